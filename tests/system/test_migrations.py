"""The Alembic migrations build exactly the schema the models describe."""

import os
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from tests.fixtures.processes import ROOT


def test_migrations_match_models(tmp_path, app):
    from scanner.extensions import db

    url = f"sqlite:///{tmp_path / 'migrated.db'}"
    env = {**os.environ, "DATABASE_URL": url, "SCANNER_CONFIG": "testing"}
    flask = str(Path(sys.executable).with_name("flask"))
    result = subprocess.run(
        [flask, "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata)
    engine.dispose()
    assert diff == [], diff
