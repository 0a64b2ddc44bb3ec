"""Writing many rows in one statement: the rows travel as one jsonb document.

`jsonb_to_recordset` turns the document back into typed columns (money as strings becomes
numeric exactly, arrays become text[]), so a batch costs one statement per table whatever
its size, and psycopg's pipeline sends all of them in one round trip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from projection_service.read_models.tables import Tables

Row = dict[str, Any]
Columns = Sequence[tuple[str, str]]  # (column, SQL type)


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)  # exact: numeric parses the string, no float in between
    if isinstance(value, Mapping):
        return dict(value)  # event payloads may arrive as read-only mappings
    raise TypeError(f"{type(value).__name__} cannot go into a read-model row")


def _dumps(value: object) -> bytes:
    return orjson.dumps(value, default=_default)


def as_jsonb(rows: Sequence[Row]) -> Jsonb:
    return Jsonb(list(rows), _dumps)


def recordset(columns: Columns) -> str:
    """`jsonb_to_recordset(%s) AS x(...)` for `columns`."""
    typed = ", ".join(f'"{name}" {kind}' for name, kind in columns)
    return f"jsonb_to_recordset(%s) AS x({typed})"


def upsert_template(table: str, columns: Columns, key: Sequence[str], *, guarded: bool) -> str:
    """INSERT of whole rows. `guarded`: an existing row is overwritten only by a newer
    aggregate version (redelivery and replay are no-ops); otherwise rows are immutable facts
    and a second insert of the same key does nothing."""
    names = ", ".join(f'"{name}"' for name, _ in columns)
    conflict = ", ".join(f'"{name}"' for name in key)
    if guarded:
        updates = ", ".join(f'"{n}" = excluded."{n}"' for n, _ in columns if n not in key)
        action = f"DO UPDATE SET {updates} WHERE t.version < excluded.version"
    else:
        action = "DO NOTHING"
    return (
        f"INSERT INTO {{{table}}} AS t ({names}) SELECT {names} FROM {recordset(columns)} "
        f"ON CONFLICT ({conflict}) {action}"
    )


async def write_rows(
    conn: AsyncConnection[TupleRow], tables: Tables, template: str, rows: Sequence[Row]
) -> None:
    if rows:
        # The template is built from constants of this package, never from input.
        await conn.execute(tables.sql(template), (as_jsonb(rows),), prepare=True)
