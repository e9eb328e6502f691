"""drop scan_flights.state and scan_flights.meta, never read

Revision ID: 7c1e5d2a9b40
Revises: 7a3e5c1d9b20
Create Date: 2026-12-03 15:45:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7c1e5d2a9b40'
down_revision = '7a3e5c1d9b20'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('scan_flights', schema=None) as batch_op:
        batch_op.drop_column('meta')
        batch_op.drop_column('state')


def downgrade():
    with op.batch_alter_table('scan_flights', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state', sa.String(length=16), nullable=False, server_default='open'))
        batch_op.add_column(sa.Column('meta', sa.JSON(), nullable=True))
