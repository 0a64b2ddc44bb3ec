"""What the stream's fault tests and the chaos run (tests/chaos) assert once everything caught
up: the 2xx answers are in the store, the topic deduplicated by event_id is the store, the
store keeps the ledger's rules (postings balance, limits hold, no wallet below zero), and the
read models and the CQL tables are what the store says (each computed here from the stored
events with this module's own SQL and CQL, not by the application's code or the answers)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
import psycopg

from infrastructure.eventstore.envelope import from_envelope
from tests.integration.stream_load import MONEY, Ack

STORED_OFFSETS = "SELECT partition, next_offset FROM projection_offsets WHERE topic = %s"
# How each money event moves a wallet's balance: every wallet.refunded counts, a claim
# reversal's and a direct debit's refund alike.
WALLET_CHANGES = {"wallet.topped_up": 1, "wallet.debited": -1, "wallet.refunded": 1}


@dataclass(frozen=True, slots=True)
class Stored:
    event_id: UUID
    aggregate_id: UUID
    aggregate_type: str
    event_type: str
    version: int
    position: int
    data: dict[str, Any]


def read_store(postgres_url: str) -> dict[UUID, Stored]:
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(
            "SELECT event_id, aggregate_id, aggregate_type, event_type, version, position,"
            " event_data::text FROM events ORDER BY position"
        ).fetchall()
    return {
        row[0]: Stored(row[0], row[1], row[2], row[3], row[4], row[5], orjson.loads(row[6]))
        for row in rows
    }


def check_acknowledged_are_stored(acks: list[Ack], stored: dict[UUID, Stored]) -> None:
    """Every 2xx answer names an event of the store, and says what that event says."""
    by_position = {e.position: e for e in stored.values()}
    wrong: list[str] = []
    for ack in acks:
        event = by_position.get(ack.position)
        if event is None or (event.aggregate_id, event.version, event.event_type) != (
            ack.aggregate_id,
            ack.version,
            ack.event_type,
        ):
            wrong.append(f"{ack.what} answered {ack.body} but the store has {event}")
        elif ack.event_type == "medcard.claim_adjudicated" and (
            event.data["claim_id"],
            event.data["decision"],
            Decimal(event.data["covered_amount"]),
            Decimal(event.data["copayment_amount"]),
        ) != (
            ack.body["claimId"],
            ack.body["decision"],
            Decimal(ack.body["coveredAmount"]),
            Decimal(ack.body["copaymentAmount"]),
        ):
            wrong.append(f"claim answered {ack.body} but the store has {event.data}")
    assert wrong == [], wrong[:10]
    # one charge per prescription per card, however often and however differently it came
    # (a rejected or reversed one may be claimed anew)
    reversed_claims = {
        e.data["claim_id"] for e in stored.values() if e.event_type == "medcard.claim_reversed"
    }
    charged = Counter(
        (e.aggregate_id, e.data["prescription_id"])
        for e in stored.values()
        if e.event_type == "medcard.claim_adjudicated"
        and e.data["decision"] != "rejected"
        and e.data["claim_id"] not in reversed_claims
    )
    assert [k for k, n in charged.items() if n > 1] == []
    # one top-up per gateway payment, one reversal per claim, however often they were sent
    topups = Counter(
        (e.aggregate_id, e.data["gateway"], e.data["gateway_reference"])
        for e in stored.values()
        if e.event_type == "wallet.topped_up"
    )
    assert [k for k, n in topups.items() if n > 1] == []
    reversals = Counter(
        e.data["claim_id"] for e in stored.values() if e.event_type == "medcard.claim_reversed"
    )
    assert [k for k, n in reversals.items() if n > 1] == []
    streams: dict[UUID, list[int]] = defaultdict(list)
    for e in stored.values():
        streams[e.aggregate_id].append(e.version)
    assert all(sorted(v) == list(range(1, len(v) + 1)) for v in streams.values())


def check_topic_is_the_store(
    stored: dict[UUID, Stored],
    messages: list[tuple[int, int, bytes]],
    expect_republished: bool = True,
) -> None:
    """The topic, deduplicated by event_id, is exactly the store; every copy of an event is
    the stored event; one aggregate lives on one partition, its events first seen in
    version order."""
    on_topic: dict[UUID, Stored] = {}
    copies: Counter[UUID] = Counter()
    partition_of: dict[UUID, set[int]] = defaultdict(set)
    first_seen: dict[UUID, list[int]] = defaultdict(list)
    different: list[str] = []
    for partition, offset, value in sorted(messages):
        event = from_envelope(value)
        copy = Stored(
            event.event_id,
            event.aggregate_id,
            event.aggregate_type,
            event.event_type,
            event.version,
            event.position,
            dict(event.data),
        )
        copies[copy.event_id] += 1
        partition_of[copy.aggregate_id].add(partition)
        if copy.event_id not in on_topic:
            on_topic[copy.event_id] = copy
            first_seen[copy.aggregate_id].append(copy.version)
        if stored.get(copy.event_id) != copy:
            different.append(f"{partition}@{offset}: {copy} vs {stored.get(copy.event_id)}")
    missing = set(stored) - set(on_topic)
    extra = set(on_topic) - set(stored)
    assert not missing, f"{len(missing)} stored events never reached the topic: {list(missing)[:5]}"
    assert not extra, f"{len(extra)} events on the topic are not in the store: {list(extra)[:5]}"
    assert different == [], different[:5]
    assert {a: p for a, p in partition_of.items() if len(p) > 1} == {}
    out_of_order = {a: v for a, v in first_seen.items() if v != list(range(1, len(v) + 1))}
    assert out_of_order == {}, list(out_of_order.items())[:3]
    print(
        f"topic: {len(messages)} messages, {len(on_topic)} events, "
        f"{sum(n - 1 for n in copies.values())} re-published copies"
    )
    if expect_republished:
        # the relay was killed between Kafka's confirmation and its checkpoint: some events
        # went out twice, and were deduplicated above and by the projection
        assert sum(copies.values()) > len(copies)


def _money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(MONEY)


def check_read_models(
    postgres_url: str, topic: str, stored: dict[UUID, Stored], ends: dict[int, int]
) -> None:
    events = sorted(stored.values(), key=lambda e: e.position)
    adjudicated = [e for e in events if e.event_type == "medcard.claim_adjudicated"]
    reversed_claims = {
        e.data["claim_id"] for e in events if e.event_type == "medcard.claim_reversed"
    }
    # What the store says each read model must hold.
    claims = {
        UUID(e.data["claim_id"]): (
            e.aggregate_id,
            e.data["prescription_id"],
            e.data["decision"],
            "reversed" if e.data["claim_id"] in reversed_claims else e.data["decision"],
            _money(e.data["total_amount"]),
            _money(e.data["covered_amount"]),
            _money(e.data["copayment_amount"]),
            _money(e.data["copayment_paid_from_wallet"]),
        )
        for e in adjudicated
    }
    spent: dict[tuple[UUID, str], Decimal] = defaultdict(Decimal)
    latest_month: dict[UUID, str] = {}
    for e in events:
        if e.event_type in ("medcard.claim_adjudicated", "medcard.claim_reversed"):
            month = e.data["month"]
            spent[(e.aggregate_id, month)] += Decimal(0)
            latest_month[e.aggregate_id] = max(month, latest_month.get(e.aggregate_id, month))
    for e in adjudicated:
        if e.data["claim_id"] not in reversed_claims:
            spent[(e.aggregate_id, e.data["month"])] += _money(e.data["covered_amount"])
    cards = {e.aggregate_id for e in events if e.event_type == "medcard.issued"}
    current = {
        c: (latest_month.get(c), spent[(c, latest_month[c])] if c in latest_month else Decimal(0))
        for c in cards
    }
    sign = WALLET_CHANGES
    balances: dict[UUID, Decimal] = {
        e.aggregate_id: Decimal("0.00") for e in events if e.event_type == "wallet.opened"
    }
    last_balance_after: dict[UUID, Decimal] = {}
    postings: dict[tuple[UUID, int], Decimal] = {}
    for e in events:
        if e.event_type in sign:
            balances[e.aggregate_id] += sign[e.event_type] * _money(e.data["amount"])
            last_balance_after[e.aggregate_id] = _money(e.data["balance_after"])
        for leg, posting in enumerate(e.data.get("postings") or (), start=1):
            postings[(e.event_id, leg)] = _money(posting["amount"])
    # the store agrees with itself: running balances are the sums of the amounts
    assert {w: b for w, b in balances.items() if w in last_balance_after} == last_balance_after
    assert sum(postings.values(), Decimal(0)) == 0
    versions: dict[UUID, int] = {}
    for e in events:
        versions[e.aggregate_id] = max(e.version, versions.get(e.aggregate_id, 0))
    items = sum(len(e.data["items"]) for e in adjudicated)
    money_events = sum(1 for e in events if e.event_type in sign)
    # the statement also lists each copayment a wallet declined (no money moved)
    statement_rows = money_events + sum(
        1 for e in events if e.event_type == "wallet.copay_declined"
    )

    with psycopg.connect(postgres_url) as conn:

        def rows(query: str, *params: Any) -> list[tuple[Any, ...]]:
            return conn.execute(query, params or None).fetchall()

        projected_claims = {
            r[0]: (r[1], r[2], r[3], r[4], _money(r[5]), _money(r[6]), _money(r[7]), _money(r[8]))
            for r in rows(
                "SELECT id, medcard_id, prescription_id, decision, status, total_amount,"
                " covered_amount, copayment_amount, copayment_paid_from_wallet"
                " FROM prescription_claims"
            )
        }
        assert len(projected_claims) == len(claims)
        wrong_claims = {
            k: (v, projected_claims.get(k))
            for k, v in claims.items()
            if projected_claims.get(k) != v
        }
        assert wrong_claims == {}, list(wrong_claims.items())[:5]
        assert rows("SELECT count(*) FROM prescription_items")[0][0] == items

        projected_cards = {
            r[0]: (r[1], _money(r[2]))
            for r in rows("SELECT id, current_month, current_month_spent FROM medcards")
        }
        wrong_cards = {
            c: (v, projected_cards.get(c))
            for c, v in current.items()
            if projected_cards.get(c) != v
        }
        assert len(projected_cards) == len(cards)
        assert wrong_cards == {}, list(wrong_cards.items())[:5]
        monthly = {
            (r[0], r[1]): _money(r[2])
            for r in rows("SELECT medcard_id, month, total_spent FROM medcard_monthly_spend")
        }
        assert monthly == dict(spent)

        projected_wallets = {r[0]: _money(r[1]) for r in rows("SELECT id, balance FROM wallets")}
        assert projected_wallets == balances
        assert rows("SELECT count(*) FROM wallet_transactions")[0][0] == statement_rows
        projected_postings = {
            (r[0], r[1]): _money(r[2])
            for r in rows("SELECT event_id, leg, amount FROM ledger_postings")
        }
        assert projected_postings == postings
        assert rows("SELECT coalesce(sum(amount), 0) FROM ledger_postings")[0][0] == 0

        cursors = {
            r[0]: (r[1], r[2])
            for r in rows("SELECT aggregate_id, version, has_held FROM projection_streams")
        }
        assert cursors == {a: (v, False) for a, v in versions.items()}
        assert rows("SELECT count(*) FROM projection_held_events")[0][0] == 0
        parked = rows("SELECT event_type, error FROM parked_events")
        assert parked == [], parked[:5]
        offsets = dict(rows(STORED_OFFSETS, topic))
        assert all(offsets.get(p, 0) <= end for p, end in ends.items()), (offsets, ends)
        assert offsets == {p: end for p, end in ends.items() if end}


# ------------------------------------------------------------------ the ledger's own rules


def check_postings_balance(stored: dict[UUID, Stored]) -> None:
    """Every event's postings sum to zero (and so, all of them together)."""
    unbalanced = {
        e.event_id: total
        for e in stored.values()
        if (total := sum((_money(p["amount"]) for p in e.data.get("postings") or ()), Decimal(0)))
    }
    assert unbalanced == {}, list(unbalanced.items())[:5]


def check_within_monthly_limits(stored: dict[UUID, Stored]) -> None:
    """What a card's claims cover in a month (reversals given back) never passes the limit the
    card was issued with, and each claim's own running total says the same."""
    limits = {
        e.aggregate_id: _money(e.data["monthly_limit"])
        for e in stored.values()
        if e.event_type == "medcard.issued"
    }
    reversed_claims = {
        e.data["claim_id"] for e in stored.values() if e.event_type == "medcard.claim_reversed"
    }
    covered: dict[tuple[UUID, str], Decimal] = defaultdict(Decimal)
    over: list[str] = []
    for e in stored.values():
        if e.event_type != "medcard.claim_adjudicated":
            continue
        if _money(e.data["month_spent_after"]) > limits[e.aggregate_id]:
            over.append(f"{e.event_id}: month_spent_after {e.data['month_spent_after']}")
        if e.data["claim_id"] not in reversed_claims:
            covered[(e.aggregate_id, e.data["month"])] += _money(e.data["covered_amount"])
    over += [f"{k}: covered {v} > {limits[k[0]]}" for k, v in covered.items() if v > limits[k[0]]]
    assert over == [], over[:5]


def check_refunds_within_debits(stored: dict[UUID, Stored]) -> None:
    """The refunds of a debit (a claim reversal's or a direct one) name a debit of their own
    wallet and never come to more than it."""
    debits = {
        (e.aggregate_id, e.data["debit_id"]): _money(e.data["amount"])
        for e in stored.values()
        if e.event_type == "wallet.debited"
    }
    refunded: dict[tuple[UUID, str], Decimal] = defaultdict(Decimal)
    for e in stored.values():
        if e.event_type == "wallet.refunded":
            refunded[(e.aggregate_id, e.data["debit_id"])] += _money(e.data["amount"])
    wrong = [
        f"{key}: refunded {total} of {debits.get(key)}"
        for key, total in refunded.items()
        if key not in debits or total > debits[key]
    ]
    assert wrong == [], wrong[:5]


def check_no_wallet_below_zero(postgres_url: str, stored: dict[UUID, Stored]) -> None:
    """No event leaves a wallet below zero, and no wallet read model shows one."""
    below = [
        f"{e.aggregate_id} v{e.version}: {e.data['balance_after']}"
        for e in stored.values()
        if "balance_after" in e.data and _money(e.data["balance_after"]) < 0
    ]
    with psycopg.connect(postgres_url) as conn:
        below += [
            f"read model {r}"
            for r in conn.execute("SELECT id, balance FROM wallets WHERE balance < 0")
        ]
    assert below == [], below[:5]


# ------------------------------------------------------------------ the CQL balance tables


Key = tuple[Any, ...]
Folded = dict[Key, tuple[Any, ...]]
SPEND_CHANGES = ("medcard.claim_adjudicated", "medcard.claim_reversed")


def expected_balances(stored: dict[UUID, Stored]) -> tuple[Folded, Folded]:
    """(value, version) per wallet and per card-month, from the newest event of each."""
    wallets: Folded = {}
    months: Folded = {}
    for e in stored.values():
        if e.event_type == "wallet.opened" or e.event_type in WALLET_CHANGES:
            value = Decimal(str(e.data.get("balance_after", "0")))
            held = wallets.get((e.aggregate_id,))
            if held is None or held[1] < e.version:
                wallets[(e.aggregate_id,)] = (value, e.version)
        elif e.event_type in SPEND_CHANGES:
            key = (e.aggregate_id, str(e.data["month"]))
            spent = Decimal(str(e.data["month_spent_after"]))
            held = months.get(key)
            if held is None or held[1] < e.version:
                months[key] = (spent, e.version)
    return wallets, months


def expected_entries(stored: dict[UUID, Stored]) -> tuple[Folded, Folded]:
    """The history tables: one row per wallet movement, one per claim or reversal."""
    wallet_rows: Folded = {}
    spend_rows: Folded = {}
    for e in stored.values():
        if e.event_type in WALLET_CHANGES:
            amount = WALLET_CHANGES[e.event_type] * _money(e.data["amount"])
            wallet_rows[(e.aggregate_id, e.version)] = (
                e.event_id, e.event_type, amount, _money(e.data["balance_after"])
            )  # fmt: skip
        elif e.event_type in SPEND_CHANGES:
            adjudicated = e.event_type == "medcard.claim_adjudicated"
            amount = (
                _money(e.data["covered_amount"])
                if adjudicated
                else -_money(e.data["restored_amount"])
            )
            spend_rows[(e.aggregate_id, str(e.data["month"]), e.version)] = (
                e.event_id,
                e.event_type,
                UUID(str(e.data["claim_id"])),
                e.data["decision"] if adjudicated else None,
                amount,
                _money(e.data["month_spent_after"]),
            )
    return wallet_rows, spend_rows


def actual_balances(session: Any, keyspace: str) -> tuple[Folded, Folded]:
    """The two balance tables of version 1 (nothing here rebuilds them), read with plain CQL."""
    wallets = {
        (r.wallet_id,): (r.balance, r.version)
        for r in session.execute(
            f"SELECT wallet_id, balance, version FROM {keyspace}.wallet_balances"
        )
    }
    months = {
        (r.medcard_id, r.month): (r.total_spent, r.version)
        for r in session.execute(
            f"SELECT medcard_id, month, total_spent, version FROM {keyspace}.medcard_monthly_spend"
        )
    }
    return wallets, months


def actual_entries(session: Any, keyspace: str) -> tuple[Folded, Folded]:
    wallet_rows = {
        (r.wallet_id, r.version): (
            r.event_id,
            r.event_type,
            _money(r.amount),
            _money(r.balance_after),
        )
        for r in session.execute(
            "SELECT wallet_id, version, event_id, event_type, amount, balance_after"
            f" FROM {keyspace}.wallet_entries"
        )
    }
    spend_rows = {
        (r.medcard_id, r.month, r.version): (
            r.event_id,
            r.event_type,
            r.claim_id,
            r.decision,
            _money(r.amount),
            _money(r.month_spent_after),
        )
        for r in session.execute(
            "SELECT medcard_id, month, version, event_id, event_type, claim_id, decision, amount,"
            f" month_spent_after FROM {keyspace}.medcard_spend_entries"
        )
    }
    return wallet_rows, spend_rows


def differences(expected: Folded, actual: Folded) -> list[str]:
    return [
        f"{key}: events {expected.get(key)}, CQL {actual.get(key)}"
        for key in sorted(set(expected) | set(actual), key=repr)
        if expected.get(key) != actual.get(key)  # Decimal compares numerically
    ]


def check_cql_tables(session: Any, keyspace: str, stored: dict[UUID, Stored]) -> None:
    """The four CQL tables, row for row, are the fold of the event store."""
    exp_wallets, exp_months = expected_balances(stored)
    act_wallets, act_months = actual_balances(session, keyspace)
    exp_wallet_rows, exp_spend_rows = expected_entries(stored)
    act_wallet_rows, act_spend_rows = actual_entries(session, keyspace)
    wrong = {
        "wallet_balances": differences(exp_wallets, act_wallets),
        "medcard_monthly_spend": differences(exp_months, act_months),
        "wallet_entries": differences(exp_wallet_rows, act_wallet_rows),
        "medcard_spend_entries": differences(exp_spend_rows, act_spend_rows),
    }
    assert all(not rows for rows in wrong.values()), {t: r[:5] for t, r in wrong.items() if r}
