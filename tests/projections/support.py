"""What the projection tests share: a world written through the real command service, and
ways to project it and to read the read models back.

The world is written over HTTP to the command service running in-process on the test's own
PostgreSQL database, so the events are exactly what production stores; the tests then read
them back from the `events` table (read_all) and feed them to the projector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from infrastructure.eventstore.port import RecordedEvent
from infrastructure.postgres.pool import Pool
from projection_service.read_models import (
    LIVE,
    PROJECTED_TABLES,
    ApplyResult,
    Tables,
    apply,
    apply_or_park,
)
from tests.api.support import (
    ALL_EVENTS,
    API,
    OTHER_PHARMACY,
    Api,
    Tokens,
    api_settings,
    beneficiary_body,
    claim,
    created,
    done,
    issue_card,
    open_wallet,
    set_copay_consent,
    top_up,
)

TOKENS = Tokens(api_settings())
Snapshot = dict[str, list[tuple[Any, ...]]]


@dataclass(frozen=True, slots=True)
class World:
    family_card: str  # gold, member-a: beneficiaries, claims with items, copay from wallet
    capped_card: str  # silver, member-b: approved, partially approved, rejected, reversed
    lifecycle_card: str  # pending -> active -> suspended -> active -> renewed -> cancelled
    wallet_a: str  # topped up twice, a debit partly refunded, a copay and its refund
    wallet_b: str
    removed_beneficiary: str
    last_claim: str  # the last claim written


async def write_world(api: Api) -> World:
    admin, ops, pharmacy = TOKENS.admin(), TOKENS.ops(), TOKENS.pharmacy()

    async def post(path: str, body: dict[str, Any] | None = None, headers: Any = admin) -> Any:
        return done(await api.client.post(f"{API}{path}", json=body, headers=headers))

    holder = beneficiary_body(date(1980, 5, 17), relationship="self", name="Ahmed Ali")
    family = await issue_card(api, admin, "member-a", primaryHolder=holder)
    fid = family["id"]
    spouse = await post(f"/medcards/{fid}/beneficiaries", beneficiary_body(serial="0021"))
    child = await post(
        f"/medcards/{fid}/beneficiaries",
        beneficiary_body(date(2012, 3, 9), relationship="child", name="Omar", serial="0031"),
    )
    wallet_a = await open_wallet(api, ops, "member-a")
    created(await top_up(api, ops, wallet_a["id"], "500.00", "fawry-a-1"))
    created(await top_up(api, ops, wallet_a["id"], "100.00", "pm-a-2", "paymob"))
    order = await post(
        f"/wallets/{wallet_a['id']}/debits", {"amount": "50.00", "reference": "order-a"}
    )
    await post(
        f"/wallets/{wallet_a['id']}/debits/{order['transactionId']}/refund",
        {"amount": "15.00", "reason": "one item returned"},
    )

    items = [
        {"drugCode": "D-1", "drugName": "Augmentin", "quantity": 3, "unitPrice": "11.11"},
        {"drugCode": "D-2", "drugName": "Panadol", "quantity": 1, "unitPrice": "66.67"},
    ]
    created(await claim(api, pharmacy, fid, "rx-items", "100.00", items=items))
    spouse_claim = created(
        await claim(api, pharmacy, fid, "rx-spouse", "350.00", beneficiaryId=spouse["id"], items=[])
    )
    member_a = TOKENS.member("member-a")
    done(await set_copay_consent(api, member_a, wallet_a["id"], "100.00", "300.00"))
    copay = created(
        await claim(api, pharmacy, fid, "rx-copay", "200.00", payCopaymentFromWallet=True)
    )
    await post(f"/medcards/{fid}/claims/{copay['claimId']}/reversal", {"reason": "returned"})
    await api.client.delete(f"{API}/medcards/{fid}/beneficiaries/{child['id']}", headers=admin)
    created(
        await claim(
            api,
            TOKENS.pharmacy(OTHER_PHARMACY),
            fid,
            "rx-child",
            "80.00",
            beneficiaryId=child["id"],
        )
    )  # rejected: the child was removed
    assert spouse_claim["decision"] == "approved"

    capped = await issue_card(api, admin, "member-b", card_type="silver")
    cid = capped["id"]
    first = created(await claim(api, pharmacy, cid, "rx-c1", "2400.00"))
    created(await claim(api, pharmacy, cid, "rx-c2", "200.00"))  # partially approved
    created(await claim(api, pharmacy, cid, "rx-c3", "50.00"))  # rejected: limit exhausted
    await post(f"/medcards/{cid}/claims/{first['claimId']}/reversal")
    wallet_b = await open_wallet(api, ops, "member-b")
    created(await top_up(api, ops, wallet_b["id"], "75.50", "fawry-b-1"))

    life = await issue_card(api, admin, "member-c", status="PENDING")
    lid = life["id"]
    await post(f"/medcards/{lid}/activate")
    await post(f"/medcards/{lid}/suspend", {"reason": "lost card"})
    suspended_claim = created(await claim(api, pharmacy, lid, "rx-l1", "10.00"))
    await post(f"/medcards/{lid}/reactivate")
    await post(f"/medcards/{lid}/renew")
    last = created(await claim(api, pharmacy, lid, "rx-l2", "30.00"))
    await post(f"/medcards/{lid}/cancel", {"reason": "member left"})
    assert suspended_claim["decision"] == "rejected"

    return World(
        family_card=fid,
        capped_card=cid,
        lifecycle_card=lid,
        wallet_a=wallet_a["id"],
        wallet_b=wallet_b["id"],
        removed_beneficiary=child["id"],
        last_claim=last["claimId"],
    )


async def stored_events(api: Api) -> list[RecordedEvent]:
    """Everything in the `events` table, in position order, as the event store reads it."""
    return await api.store.read_all(0, ALL_EVENTS)


async def project(
    pool: Pool, events: Sequence[RecordedEvent], *, tables: Tables = LIVE, park: bool = False
) -> ApplyResult:
    """One batch in one transaction, as the consumer loop does it."""
    async with pool.connection() as conn, conn.transaction():
        if park:
            return await apply_or_park(conn, events, tables=tables)
        return await apply(conn, events, tables=tables)


async def snapshot(conn: AsyncConnection[TupleRow], tables: Tables = LIVE) -> Snapshot:
    """Every projected table's rows, ordered by key (each key is its first one or two
    columns)."""
    result: Snapshot = {}
    for table in PROJECTED_TABLES:
        cur = await conn.execute(tables.sql("SELECT * FROM {" + table + "} ORDER BY 1, 2"))
        result[table] = await cur.fetchall()
    return result


async def pool_snapshot(pool: Pool, tables: Tables = LIVE) -> Snapshot:
    async with pool.connection() as conn:
        return await snapshot(conn, tables)


async def rows(pool: Pool, query: str, *params: Any) -> list[tuple[Any, ...]]:
    async with pool.connection() as conn:
        cur = await conn.execute(query, params)
        return await cur.fetchall()
