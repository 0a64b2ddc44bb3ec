"""Shadow tables for a rebuild: create them LIKE the live ones, then swap them in.

The swap renames in one transaction under ACCESS EXCLUSIVE locks: readers and the live
consumer wait for a moment and then find the new tables under the old names. The new
tables get the live tables' index, constraint and foreign-key names back, so the schema
after a rebuild is the schema the migrations created (a later migration can name them).
"""

from __future__ import annotations

from collections import defaultdict

from psycopg import AsyncConnection, sql
from psycopg.rows import TupleRow

from projection_service.read_models.tables import LIVE, PROJECTED_TABLES, SHADOW, Tables

RETIRED = Tables("__retired")

# One index per row: whether it is unique, and its definition from USING on (column list,
# predicate), which is the same for a table and its LIKE copy.
_INDEXES = """
SELECT c.relname, i.indisunique, substring(pg_get_indexdef(i.indexrelid) FROM ' USING .*$')
FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
WHERE i.indrelid = to_regclass(%s) ORDER BY c.relname
"""

# Foreign keys between projected tables (LIKE does not copy them).
_FOREIGN_KEYS = """
SELECT con.conname, src.relname,
       array(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY AS k(n, o)
             JOIN pg_attribute AS a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o),
       dst.relname,
       array(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY AS k(n, o)
             JOIN pg_attribute AS a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o)
FROM pg_constraint AS con
JOIN pg_class AS src ON src.oid = con.conrelid
JOIN pg_class AS dst ON dst.oid = con.confrelid
WHERE con.contype = 'f' AND con.conrelid = ANY(%s::regclass[])
ORDER BY src.relname, con.conname
"""


def _names(tables: Tables) -> list[sql.Identifier]:
    return [tables.identifier(t) for t in PROJECTED_TABLES]


async def drop_shadow(conn: AsyncConnection[TupleRow], shadow: Tables = SHADOW) -> None:
    await conn.execute(
        sql.SQL("DROP TABLE IF EXISTS {}").format(sql.SQL(", ").join(_names(shadow)))
    )


async def create_shadow(
    conn: AsyncConnection[TupleRow], shadow: Tables = SHADOW, live: Tables = LIVE
) -> None:
    """Fresh, empty shadow tables with the live tables' columns, defaults, checks and unique
    indexes (the upserts' conflict targets); not their other indexes nor their foreign keys,
    which add_indexes_and_foreign_keys adds after the bulk load: maintaining them row by row
    while loading costs several times building them once."""
    async with conn.transaction():
        await drop_shadow(conn, shadow)
        for table in PROJECTED_TABLES:
            await conn.execute(
                sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(
                    shadow.identifier(table), live.identifier(table)
                )
            )
            for name, unique, _ in await _fetch(conn, _INDEXES, shadow.name(table)):
                if not unique:
                    await conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))


async def add_indexes_and_foreign_keys(
    conn: AsyncConnection[TupleRow], shadow: Tables = SHADOW, live: Tables = LIVE
) -> None:
    await add_indexes(conn, shadow, live)
    await add_foreign_keys(conn, shadow, live)


async def add_indexes(
    conn: AsyncConnection[TupleRow], shadow: Tables = SHADOW, live: Tables = LIVE
) -> None:
    """Every index of a live table that its shadow lacks (same definition; the swap gives
    them the live names)."""
    for table in PROJECTED_TABLES:
        have = {(u, d) for _, u, d in await _fetch(conn, _INDEXES, shadow.name(table))}
        for _, unique, definition in await _fetch(conn, _INDEXES, live.name(table)):
            if (unique, definition) not in have:
                # `definition` is pg_get_indexdef's own text from USING on, not input
                await conn.execute(
                    sql.SQL("CREATE {}INDEX ON {} {}").format(
                        sql.SQL("UNIQUE " if unique else ""),
                        shadow.identifier(table),
                        sql.SQL(definition),
                    )
                )


async def add_foreign_keys(
    conn: AsyncConnection[TupleRow], shadow: Tables = SHADOW, live: Tables = LIVE
) -> None:
    """The live tables' foreign keys, between the shadow tables, under the same names.
    Added after the bulk load: checking each row while loading would only slow it down."""
    by_live_name = {live.name(t): t for t in PROJECTED_TABLES}
    cur = await conn.execute(_FOREIGN_KEYS, ([live.name(t) for t in PROJECTED_TABLES],))
    async with conn.transaction():
        for name, source, columns, target, target_columns in await cur.fetchall():
            if source not in by_live_name or target not in by_live_name:
                continue
            await conn.execute(
                sql.SQL(
                    "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({})"
                ).format(
                    shadow.identifier(by_live_name[source]),
                    sql.Identifier(name),
                    sql.SQL(", ").join(map(sql.Identifier, columns)),
                    shadow.identifier(by_live_name[target]),
                    sql.SQL(", ").join(map(sql.Identifier, target_columns)),
                )
            )


async def lock_tables(
    conn: AsyncConnection[TupleRow], shadow: Tables = SHADOW, live: Tables = LIVE
) -> None:
    """In the swap's transaction. projection_streams first: the consumer locks it first."""
    order = sorted(PROJECTED_TABLES, key=lambda t: t != "projection_streams")
    names = [live.identifier(t) for t in order] + [shadow.identifier(t) for t in order]
    await conn.execute(
        sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.SQL(", ").join(names))
    )


async def swap(
    conn: AsyncConnection[TupleRow], shadow: Tables = SHADOW, live: Tables = LIVE
) -> None:
    """Put the shadow tables in the live ones' place and drop the old ones. Must run in a
    transaction that holds lock_tables: then it is all or nothing, and nobody sees between."""
    renames = await _index_renames(conn, shadow, live)
    for table in PROJECTED_TABLES:
        await conn.execute(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                live.identifier(table), sql.Identifier(RETIRED.name(table))
            )
        )
        await conn.execute(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                shadow.identifier(table), sql.Identifier(live.name(table))
            )
        )
    # One statement: the retired tables' foreign keys point at each other.
    await conn.execute(
        sql.SQL("DROP TABLE {}").format(
            sql.SQL(", ").join(sql.Identifier(RETIRED.name(t)) for t in PROJECTED_TABLES)
        )
    )
    # Their indexes are gone with them, so the names are free; renaming an index renames
    # the primary-key or unique constraint it backs as well.
    for old, new in renames:
        await conn.execute(
            sql.SQL("ALTER INDEX {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new))
        )


async def _index_renames(
    conn: AsyncConnection[TupleRow], shadow: Tables, live: Tables
) -> list[tuple[str, str]]:
    """(shadow index, live index) pairs with the same definition, by table."""
    pairs: list[tuple[str, str]] = []
    for table in PROJECTED_TABLES:
        wanted: dict[tuple[bool, str], list[str]] = defaultdict(list)
        for name, unique, definition in await _fetch(conn, _INDEXES, live.name(table)):
            wanted[(unique, definition)].append(name)
        for name, unique, definition in await _fetch(conn, _INDEXES, shadow.name(table)):
            names = wanted.get((unique, definition))
            if names:
                target = names.pop(0)
                if target != name:
                    pairs.append((name, target))
    return pairs


async def _fetch(conn: AsyncConnection[TupleRow], query: str, *params: object) -> list[TupleRow]:
    cur = await conn.execute(query, params)
    return await cur.fetchall()
