"""counter totals: the shared Prometheus counters where Redis is not there

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


def downgrade():
    op.drop_table('counter_totals')
