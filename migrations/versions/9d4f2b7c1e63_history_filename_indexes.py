"""history by filename on PostgreSQL: a trigram index for substring search, a b-tree for the sort

Revision ID: 9d4f2b7c1e63
Revises: 9d4b2f61c3e7
Create Date: 2026-12-03 18:10:00.000000

PostgreSQL only (SQLite histories are one machine's, small enough to scan). The models do not
declare these indexes: SQLite has neither pg_trgm nor the operator class, so migrations/env.py
keeps autogenerate from proposing to drop them (FILENAME_INDEXES).
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '9d4f2b7c1e63'
down_revision = '9d4b2f61c3e7'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    # pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may create it.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # `filename ILIKE '%text%'` (the history's filename filter) reads this instead of every file.
    op.execute("CREATE INDEX IF NOT EXISTS ix_files_filename_trgm ON files USING gin (filename gin_trgm_ops)")
    # `ORDER BY lower(filename)` for one user's files, read in order and stopped after a page.
    op.execute("CREATE INDEX IF NOT EXISTS ix_files_user_lower_filename ON files (user_id, lower(filename), id)")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_files_user_lower_filename")
    op.execute("DROP INDEX IF EXISTS ix_files_filename_trgm")
