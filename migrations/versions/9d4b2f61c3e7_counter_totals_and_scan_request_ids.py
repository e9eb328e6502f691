"""counter totals (the shared Prometheus counters where Redis is not there) and the request id of
each scan

Revision ID: 9d4b2f61c3e7
Revises: 7c1e5d2a9b40
Create Date: 2026-12-03 18:15:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '9d4b2f61c3e7'
down_revision = '7c1e5d2a9b40'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('counter_totals',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('labels', sa.String(length=400), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', 'labels', name=op.f('pk_counter_totals'))
    )
    with op.batch_alter_table('scans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_id', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('scans', schema=None) as batch_op:
        batch_op.drop_column('request_id')
    op.drop_table('counter_totals')
