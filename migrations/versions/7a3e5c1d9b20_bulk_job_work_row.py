"""bulk jobs are work rows: attempts counted, next_run_at doubles as the lease

Revision ID: 7a3e5c1d9b20
Revises: 65f5716be1a8
Create Date: 2026-12-03 14:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

import scanner.db_types  # the models' own column types (UTC datetimes)


# revision identifiers, used by Alembic.
revision = '7a3e5c1d9b20'
down_revision = '65f5716be1a8'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('bulk_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.drop_column('lease_until')
    # The default only filled the rows already there; new ones get theirs from the model.
    with op.batch_alter_table('bulk_jobs', schema=None) as batch_op:
        batch_op.alter_column('attempts', server_default=None)


def downgrade():
    with op.batch_alter_table('bulk_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_until', scanner.db_types.UTCDateTime(), nullable=True))
        batch_op.drop_column('attempts')
