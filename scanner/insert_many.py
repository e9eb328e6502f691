"""Many rows INSERTed by one statement with one parameter: a JSON array the database unpacks.

A scan's verdicts are some seventy rows. Sent as an executemany they are seventy executions for
the driver to prepare, bind and read back, which cost more CPU than the rest of the step; a
multi-row VALUES is a statement of five hundred parameters built and compiled on every call.
This statement is compiled once per process, on PostgreSQL (json_to_recordset) and SQLite
(json_each) alike. Text columns only: that is what JSON carries without a cast.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from sqlalchemy import Table, TextClause, bindparam, text

from .extensions import db


def insert_many(table: Table, rows: list[dict[str, Any]], **same: Any) -> None:
    """INSERT `rows` (dicts of text columns, all with the same keys) into `table`, each with the
    columns and values of `same` as well."""
    if not rows:
        return
    dialect = db.session.get_bind().dialect.name
    statement = _statement(table, dialect, tuple(same), tuple(rows[0]))
    db.session.execute(statement, {**same, "rows": json.dumps(rows, separators=(",", ":"))})


@functools.lru_cache(maxsize=16)
def _statement(table: Table, dialect: str, same: tuple[str, ...], columns: tuple[str, ...]) -> TextClause:
    # Only the table's own column names reach the SQL text (KeyError for any other); values are bound.
    names = [table.c[key].name for key in (*same, *columns)]
    fixed = [f":{key}" for key in same]
    if dialect == "postgresql":
        record = ", ".join(f"{table.c[key].name} text" for key in columns)
        unpacked = [f"r.{table.c[key].name}" for key in columns]
        source = f"json_to_recordset(CAST(:rows AS json)) AS r({record})"
    else:
        unpacked = [f"json_extract(value, '$.{table.c[key].name}')" for key in columns]
        source = "json_each(:rows)"
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join(fixed + unpacked)} FROM {source}"  # noqa: S608
    return text(sql).bindparams(*(bindparam(key, type_=table.c[key].type) for key in same))
