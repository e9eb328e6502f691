"""Many rows INSERTed by one statement with one parameter: a JSON array the database unpacks.

A scan's verdicts are some seventy rows. Sent as an executemany they are seventy executions for
the driver to prepare, bind and read back, which cost more CPU than the rest of the step; a
multi-row VALUES is a statement of five hundred parameters built and compiled on every call.
This statement is compiled once per process and set of columns. PostgreSQL unpacks the array with
`json_to_recordset`, each field cast to its column's type (uuid, timestamp, boolean, integer,
json, text), so any row goes this way. SQLite's `json_each` hands back JSON's own types, which
are its storage only for text (a uuid or a timestamp is stored in a form of SQLAlchemy's): rows
with other columns go there as an executemany, which SQLite, in process, runs without a round
trip per row.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import String, Table, TextClause, bindparam, insert, text
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import Executable

from .db_types import UTCDateTime
from .extensions import db


def insert_many(table: Table, rows: list[dict[str, Any]], **same: Any) -> None:
    """INSERT `rows` (dicts, all with the same keys) into `table` through the session, each with
    the columns and values of `same` as well."""
    if rows:
        db.session.execute(*many_rows(table, db.session.get_bind().dialect, rows, same))


def many_rows(
    table: Table, dialect: Dialect, rows: list[dict[str, Any]], same: dict[str, Any] | None = None
) -> tuple[Executable, dict[str, Any] | list[dict[str, Any]]]:
    """The statement and its parameters that INSERT `rows` (all with the same keys, and `same` on
    each): one parameter set, so one statement, except for rows SQLite cannot unpack. The table's
    own defaults fill the columns not given, as an INSERT of the table would."""
    same = same or {}
    defaults = _defaults(table, (*same, *rows[0]))
    if defaults:
        rows = [{**_default_values(defaults), **row} for row in rows]
    columns = tuple(rows[0])
    if dialect.name != "postgresql" and not _all_text(table, columns):
        return insert(table), [{**same, **row} for row in rows]
    statement = _statement(table, dialect, tuple(same), columns)
    return statement, {**same, "rows": _rows_json(rows)}


@functools.lru_cache(maxsize=16)
def _defaults(table: Table, given: tuple[str, ...]) -> dict[str, Any]:
    # Python-side defaults only: a text statement would skip them, where the database has none.
    return {
        column.key: column.default
        for column in table.columns
        if column.key not in given and column.default is not None and not column.default.is_sequence
    }


def _default_values(defaults: dict[str, Any]) -> dict[str, Any]:
    # A callable default is called for each row, as an INSERT of the table would (those that take
    # no execution context: SQLAlchemy wraps them to take one and ignore it).
    return {key: default.arg(None) if default.is_callable else default.arg for key, default in defaults.items()}


def _all_text(table: Table, columns: tuple[str, ...]) -> bool:
    return all(isinstance(table.c[key].type, String) for key in columns)


def _json_value(value: Any) -> Any:
    """The JSON form of a value orjson does not write itself: a timestamp as its column type stores
    it (naive UTC), as the cast to `timestamp` would drop an offset unconverted."""
    if isinstance(value, datetime):
        return _TIMESTAMP.process_bind_param(value, None).isoformat()
    raise TypeError(f"{type(value).__name__} is not a column value")


_TIMESTAMP = UTCDateTime()


def _rows_json(rows: list[dict[str, Any]]) -> str:
    # orjson: several times faster than the standard encoder; it writes ids as their text itself.
    return orjson.dumps(rows, default=_json_value, option=orjson.OPT_PASSTHROUGH_DATETIME).decode()


@functools.lru_cache(maxsize=16)
def _statement(table: Table, dialect: Dialect, same: tuple[str, ...], columns: tuple[str, ...]) -> TextClause:
    # Only the table's own column names and types reach the SQL text (KeyError for any other);
    # values are bound.
    names = [table.c[key].name for key in (*same, *columns)]
    fixed = [f":{key}" for key in same]
    if dialect.name == "postgresql":
        record = ", ".join(f"{table.c[key].name} {table.c[key].type.compile(dialect=dialect)}" for key in columns)
        unpacked = [f"r.{table.c[key].name}" for key in columns]
        source = f"json_to_recordset(CAST(:rows AS json)) AS r({record})"
    else:
        unpacked = [f"json_extract(value, '$.{table.c[key].name}')" for key in columns]
        source = "json_each(:rows)"
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join(fixed + unpacked)} FROM {source}"  # noqa: S608
    return text(sql).bindparams(*(bindparam(key, type_=table.c[key].type) for key in same))
