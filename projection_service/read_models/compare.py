"""Row-for-row comparison of the live read models with a rebuilt (shadow) copy.

The shadow is what the event store says; so a row only in the shadow is *missing* from the
live table, a row only in the live table is *extra*, and a key in both with other values is
*different*. Rows are joined on the primary key and compared as jsonb (numeric by value).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from psycopg import AsyncConnection, sql
from psycopg.rows import TupleRow

from infrastructure.eventstore.encoding import loads
from projection_service.read_models.tables import LIVE, PROJECTED_TABLES, SHADOW, Tables

DifferenceKind = Literal["missing", "extra", "different"]

_PRIMARY_KEY = """
SELECT a.attname FROM pg_index AS i
JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
WHERE i.indrelid = to_regclass(%s) AND i.indisprimary
ORDER BY array_position(i.indkey::int2[], a.attnum)
"""

# Counts per kind come with every example row (window functions), so one statement does it.
_DIFF = """
WITH diff AS (
  SELECT CASE WHEN l.{first} IS NULL THEN 'missing' WHEN s.{first} IS NULL THEN 'extra'
              ELSE 'different' END AS kind,
         to_jsonb(l) AS live_row, to_jsonb(s) AS shadow_row, {order_key} AS order_key
  FROM {live} AS l FULL JOIN {shadow} AS s ON {join}
  WHERE l.{first} IS NULL OR s.{first} IS NULL OR to_jsonb(l) IS DISTINCT FROM to_jsonb(s)
), ranked AS (
  SELECT kind, live_row, shadow_row, count(*) OVER (PARTITION BY kind) AS n,
         row_number() OVER (PARTITION BY kind ORDER BY order_key) AS r
  FROM diff
)
SELECT kind, n, live_row::text, shadow_row::text FROM ranked WHERE r <= %s ORDER BY kind, r
"""


@dataclass(frozen=True, slots=True)
class RowDifference:
    kind: DifferenceKind
    live: dict[str, Any] | None
    shadow: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class TableComparison:
    table: str
    missing: int
    extra: int
    different: int
    examples: tuple[RowDifference, ...]

    @property
    def identical(self) -> bool:
        return self.missing == self.extra == self.different == 0


async def primary_key(conn: AsyncConnection[TupleRow], table: str) -> list[str]:
    cur = await conn.execute(_PRIMARY_KEY, (table,))
    return [name for (name,) in await cur.fetchall()]


async def compare_table(
    conn: AsyncConnection[TupleRow],
    table: str,
    *,
    live: Tables = LIVE,
    shadow: Tables = SHADOW,
    examples: int = 3,
) -> TableComparison:
    key = await primary_key(conn, live.name(table))
    if not key:
        raise ValueError(f"{live.name(table)} has no primary key to compare rows by")
    first = sql.Identifier(key[0])
    query = sql.SQL(_DIFF).format(
        first=first,
        live=live.identifier(table),
        shadow=shadow.identifier(table),
        join=sql.SQL(" AND ").join(sql.SQL("l.{0} = s.{0}").format(sql.Identifier(k)) for k in key),
        order_key=sql.SQL("coalesce(l.{0}, s.{0})::text").format(first),
    )
    cur = await conn.execute(query, (examples,))
    counts = {"missing": 0, "extra": 0, "different": 0}
    found: list[RowDifference] = []
    for kind, n, live_row, shadow_row in await cur.fetchall():
        counts[kind] = n
        found.append(
            RowDifference(
                kind,
                None if live_row is None else loads(live_row),
                None if shadow_row is None else loads(shadow_row),
            )
        )
    return TableComparison(
        table, counts["missing"], counts["extra"], counts["different"], tuple(found)
    )


async def compare_tables(
    conn: AsyncConnection[TupleRow],
    *,
    live: Tables = LIVE,
    shadow: Tables = SHADOW,
    examples: int = 3,
) -> list[TableComparison]:
    return [
        await compare_table(conn, table, live=live, shadow=shadow, examples=examples)
        for table in PROJECTED_TABLES
    ]
