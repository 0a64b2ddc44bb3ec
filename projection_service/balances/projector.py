"""Projects recorded events into the CQL balance tables (docs/design.md §5).

Every write is an idempotent upsert of ABSOLUTE values taken from the event
(`balance_after`, `month_spent_after`), written `USING TIMESTAMP write_timestamp(version)`.
The aggregate version is strictly increasing per aggregate, so per row the cell of the
newest event has the highest timestamp and wins whatever the order of arrival; a replayed
or duplicated event rewrites identical cells. No read-before-write, no counters, no LWT.
A batch of events goes out as one request per partition (`requests`): the per-write
timestamps make that exactly equal to writing event after event.

Caveat (documented, by design): a write with the SAME timestamp is resolved by comparing
values, not by arrival, and a write with a wall-clock timestamp (e.g. a manual cqlsh
UPDATE or DELETE) beats every projected write. Repairs must use write_timestamp(version),
or a rebuild (balances/rebuild.py), which writes fresh tables of a new version (versions.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from cassandra.concurrent import execute_concurrent  # type: ignore[import-untyped]
from cassandra.query import (  # type: ignore[import-untyped]
    UNSET_VALUE,
    BatchStatement,
    BatchType,
)

from domain.events import UnknownEventType
from domain.upcasting import upcast
from infrastructure.cassandra.session import prepare_idempotent
from infrastructure.eventstore.port import RecordedEvent
from projection_service.balances.versions import current_version, table_name

log = logging.getLogger("healthpay.balances")

WALLET_OPENED = "wallet.opened"
WALLET_BALANCE_EVENTS = frozenset({"wallet.topped_up", "wallet.debited", "wallet.refunded"})
CLAIM_ADJUDICATED = "medcard.claim_adjudicated"
CLAIM_REVERSED = "medcard.claim_reversed"
SPEND_EVENTS = frozenset({CLAIM_ADJUDICATED, CLAIM_REVERSED})
BALANCE_EVENTS = frozenset({WALLET_OPENED}) | WALLET_BALANCE_EVENTS | SPEND_EVENTS
# Microseconds per version: leaves room for sub-steps of one version if ever needed.
TIMESTAMP_STEP = 1_000
# Writes per CQL request at most: one partition's writes go as one unlogged batch, cut into
# chunks of this many, well under the batch size at which Cassandra warns (5 KiB).
BATCH_LIMIT = 20


def write_timestamp(version: int) -> int:
    """The CQL write timestamp (microseconds) of the writes an event of `version` makes."""
    if version < 1:
        raise ValueError(f"version must be positive, got {version}")
    return version * TIMESTAMP_STEP


def is_balance_event(event: RecordedEvent) -> bool:
    return event.event_type in BALANCE_EVENTS


class BadBalanceEvent(ValueError):
    """An event of a projected type without the fields the projection needs."""


@dataclass(frozen=True, slots=True)
class ProjectResult:
    events: int  # balance events projected
    skipped: int  # other event types
    unreadable: tuple[tuple[RecordedEvent, str], ...]  # (event, why): logged, never retried
    statements: int  # CQL writes (balance upserts + history entries)
    requests: int  # CQL requests they were sent in (one per partition and BATCH_LIMIT)

    @property
    def bad(self) -> int:
        return len(self.unreadable)


@dataclass(frozen=True, slots=True)
class Write:
    """One CQL write: a prepared statement, its parameters, and the partition it lands in
    (writes with the same `partition` share one partition key value, hence one replica set)."""

    partition: tuple[Any, ...]
    statement: Any
    params: tuple[Any, ...]


class BalanceProjector:
    """Prepared once per session; `project(events)` is blocking (call it from a thread)."""

    def __init__(
        self,
        session: Any,
        keyspace: str,
        concurrency: int = 64,
        *,
        version: int | None = None,
        refresh_seconds: float = 5.0,
    ) -> None:
        """`version=None` follows the registry (balances/versions.py): read now, cached, and
        re-read at most every `refresh_seconds` before a batch, so that a running consumer
        moves to the tables a rebuild swapped in. An int pins the tables (the rebuild)."""
        if not keyspace.isidentifier():
            raise ValueError(f"bad keyspace name {keyspace!r}")
        self.session = session
        self.keyspace = keyspace
        self.concurrency = concurrency
        self.follows_registry = version is None
        self.refresh_seconds = refresh_seconds
        self._checked_at = time.monotonic()
        self.version = current_version(session, keyspace) if version is None else version
        self._prepare(self.version)

    def refresh(self, force: bool = False) -> bool:
        """Re-reads the registry if due (or `force`); True when the tables changed."""
        if not self.follows_registry:
            return False
        now = time.monotonic()
        if not force and now - self._checked_at < self.refresh_seconds:
            return False
        self._checked_at = now
        version = current_version(self.session, self.keyspace)
        if version == self.version:
            return False
        log.info("balance tables: version %s -> %s", self.version, version)
        self._prepare(version)
        self.version = version
        return True

    def _prepare(self, version: int) -> None:
        ks = self.keyspace
        session = self.session
        p = prepare_idempotent
        wallets = f"{ks}.{table_name('wallet_balances', version)}"
        months = f"{ks}.{table_name('medcard_monthly_spend', version)}"
        wallet_entries = f"{ks}.{table_name('wallet_entries', version)}"
        spend_entries = f"{ks}.{table_name('medcard_spend_entries', version)}"
        self._wallet_opened = p(
            session,
            f"INSERT INTO {wallets} "
            "(wallet_id, balance, currency, last_updated, version) "
            "VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?",
        )
        self._wallet_balance = p(
            session,
            f"INSERT INTO {wallets} (wallet_id, balance, last_updated, version) "
            "VALUES (?, ?, ?, ?) USING TIMESTAMP ?",
        )
        self._wallet_entry = p(
            session,
            f"INSERT INTO {wallet_entries} (wallet_id, version, event_id, event_type, "
            "amount, balance_after, occurred_at) VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
        )
        self._month_spend = p(
            session,
            f"INSERT INTO {months} "
            "(medcard_id, month, total_spent, last_updated, version) "
            "VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?",
        )
        self._spend_entry = p(
            session,
            f"INSERT INTO {spend_entries} (medcard_id, month, version, event_id, "
            "event_type, claim_id, decision, amount, month_spent_after, occurred_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
        )

    def plan(
        self, events: Iterable[RecordedEvent]
    ) -> tuple[list[Write], int, list[tuple[RecordedEvent, str]]]:
        """The writes of a batch, how many events were of other types, and the balance events
        that cannot be read, with why.

        Within the batch only the newest write per (statement, balance row) is kept (fewer
        writes; the timestamps would pick the same winner anyway); every history entry is.
        """
        latest: dict[tuple[Any, ...], tuple[int, Write]] = {}
        out: list[Write] = []
        skipped = 0
        bad: list[tuple[RecordedEvent, str]] = []
        for event in events:
            if not is_balance_event(event):
                skipped += 1
                continue
            try:
                row_writes, entries = self._writes(event)
            except (UnknownEventType, KeyError, TypeError, ArithmeticError, ValueError) as exc:
                bad.append((event, f"{type(exc).__name__}: {exc}"))
                log.error(
                    "cannot project %s %s v%s (%s): %s", event.event_type,
                    event.aggregate_id, event.version, event.event_id, exc,
                    extra={"correlation_id": event.metadata.get("correlation_id")},
                )  # fmt: skip
                continue
            for key, write in row_writes:
                held = latest.get(key)
                if held is None or held[0] < event.version:
                    latest[key] = (event.version, write)
            out.extend(entries)
        out.extend(write for _, write in latest.values())
        return out, skipped, bad

    def project(self, events: Sequence[RecordedEvent]) -> ProjectResult:
        """Writes a batch; raises if any write failed (the caller then retries the batch)."""
        self.refresh()
        writes, skipped, bad = self.plan(events)
        sent = requests(writes)
        if sent:
            execute_concurrent(
                self.session, sent, concurrency=self.concurrency, raise_on_first_error=True
            )
        balance_events = len(events) - skipped - len(bad)
        return ProjectResult(balance_events, skipped, tuple(bad), len(writes), len(sent))

    def _writes(self, e: RecordedEvent) -> tuple[list[tuple[tuple[Any, ...], Write]], list[Write]]:
        """(row key, write) of the balance rows the event sets, and its history entries."""
        ts = write_timestamp(e.version)
        # The current version's fields, whatever version was stored (domain/upcasting.py);
        # a version this release cannot read is refused here, not read by guesswork.
        d = upcast(e.event_type, e.schema_version, e.data)
        at = e.timestamp
        # A wallet's two tables share the partition key wallet_id, and a card's month totals
        # and history share medcard_id (schemas/cql/0003): one replica set, one request each.
        wallet = ("wallet", e.aggregate_id)
        # Rows are collapsed per (statement, row): wallet.opened also writes `currency`.
        if e.event_type == WALLET_OPENED:
            return [
                (("wallet.opened", e.aggregate_id), Write(wallet, self._wallet_opened,
                 (e.aggregate_id, Decimal("0"), str(d["currency"]), at, e.version, ts))),
            ], []  # fmt: skip
        if e.event_type in WALLET_BALANCE_EVENTS:
            balance = Decimal(str(d["balance_after"]))
            amount = Decimal(str(d["amount"]))
            if e.event_type == "wallet.debited":
                amount = -amount
            return [
                (("wallet", e.aggregate_id), Write(wallet, self._wallet_balance,
                 (e.aggregate_id, balance, at, e.version, ts))),
            ], [
                Write(wallet, self._wallet_entry,
                 (e.aggregate_id, e.version, e.event_id, e.event_type, amount, balance, at, ts)),
            ]  # fmt: skip
        # claim adjudicated / reversed
        month = str(d["month"])
        spent = Decimal(str(d["month_spent_after"]))
        if e.event_type == CLAIM_ADJUDICATED:
            amount = Decimal(str(d["covered_amount"]))
            decision: Any = str(d["decision"])
        else:
            amount = -Decimal(str(d["restored_amount"]))
            decision = UNSET_VALUE  # not null: a null binding would write a tombstone
        claim_id = UUID(str(d["claim_id"]))
        key: tuple[Any, ...] = ("month", e.aggregate_id, month)
        return [
            (key, Write(("card", e.aggregate_id), self._month_spend,
             (e.aggregate_id, month, spent, at, e.version, ts))),
        ], [
            Write(("card", e.aggregate_id), self._spend_entry,
             (e.aggregate_id, month, e.version, e.event_id, e.event_type, claim_id, decision,
              amount, spent, at, ts)),
        ]  # fmt: skip


def requests(writes: Iterable[Write]) -> list[tuple[Any, Any]]:
    """The CQL requests of a batch's writes, as (statement, parameters) pairs: ONE request per
    partition (up to BATCH_LIMIT writes each), an UNLOGGED batch when it holds more than one.

    A single-partition unlogged batch is applied by the partition's replicas as one mutation,
    atomically and in isolation, with no batch log: fewer round trips and less work per write
    on both sides, and the token-aware policy routes it by its first statement, which is the
    partition's. Each write keeps its own USING TIMESTAMP, so the outcome is exactly that of
    sending the writes one by one, in any order.
    """
    by_partition: dict[tuple[Any, ...], list[Write]] = {}
    for write in writes:
        by_partition.setdefault(write.partition, []).append(write)
    out: list[tuple[Any, Any]] = []
    for group in by_partition.values():
        for i in range(0, len(group), BATCH_LIMIT):
            chunk = group[i : i + BATCH_LIMIT]
            if len(chunk) == 1:
                out.append((chunk[0].statement, chunk[0].params))
                continue
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            batch.is_idempotent = True  # every write in it is (absolute values, fixed timestamps)
            for write in chunk:
                batch.add(write.statement, write.params)
            out.append((batch, None))
    return out
