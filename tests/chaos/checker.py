"""The chaos run's independent checker: reads PostgreSQL and CQL directly, with its own SQL
and CQL (tests/integration/stream_checks.py), never through the application's code, and says
for each rule whether it held. Nothing here trusts a process's own report."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.chaos.stack import KEYSPACE, PARTITIONS, Stack
from tests.integration.stream_checks import (
    check_acknowledged_are_stored,
    check_cql_tables,
    check_no_wallet_below_zero,
    check_postings_balance,
    check_read_models,
    check_refunds_within_debits,
    check_topic_is_the_store,
    check_within_monthly_limits,
    read_store,
)
from tests.integration.stream_load import Load
from tests.integration.stream_processes import read_topic


@dataclass
class Verdict:
    passed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def check(self, name: str, run: Callable[[], None]) -> None:
        try:
            run()
        except AssertionError as exc:
            self.failed.append((name, str(exc)[:2000] or "assertion failed"))
            print(f"chaos: check FAILED  {name}: {str(exc)[:2000]}", flush=True)
        else:
            self.passed.append(name)
            print(f"chaos: check passed  {name}", flush=True)


def _no_exits(exits: list[str]) -> None:
    assert exits == [], f"processes exited on their own: {exits}"


def _answered(load: Load) -> None:
    assert load.unexpected == [], f"{len(load.unexpected)} unexpected: {load.unexpected[:10]}"


def _some_of_everything(load: Load) -> None:
    wanted = ("claim", 201), ("topup", 201), ("reversal", 200)
    assert all(load.statuses[w] > 0 for w in wanted), sorted(load.statuses.items())
    paid = [
        a for a in load.acks if a.what == "claim" and a.body["copaymentPaidFromWallet"] != "0.00"
    ]
    assert paid, "no copay was paid from a wallet"


def _cql_syncs_before_acknowledging(session: Any) -> None:
    """The node in force runs the commit log mode of scripts/cassandra/cassandra.yaml."""
    row = session.execute(
        "SELECT value FROM system_views.settings WHERE name = 'commitlog_sync'"
    ).one()
    value = None if row is None else row.value
    assert value == "batch", f"commitlog_sync is {value}"


async def verify(stack: Stack, load: Load, exits: list[str], ends: dict[int, int]) -> Verdict:
    """Every rule of the run, each one counted (stores read once everything caught up)."""
    verdict = Verdict()
    stored = await asyncio.to_thread(read_store, stack.postgres_url)
    topic_ends, messages = await asyncio.to_thread(
        read_topic, stack.kafka.bootstrap, stack.topic, PARTITIONS
    )
    session: Any = await asyncio.to_thread(stack.cql_session)
    url = stack.postgres_url
    checks: list[tuple[str, Callable[[], None]]] = [
        ("no process exited on its own", lambda: _no_exits(exits)),
        ("every request got its answer (retries included)", lambda: _answered(load)),
        ("claims, copays paid from wallets, top-ups and reversals were acknowledged",
         lambda: _some_of_everything(load)),
        ("every acknowledged write stored once, as answered",
         lambda: check_acknowledged_are_stored(load.acks, stored)),
        ("postings sum to zero per event", lambda: check_postings_balance(stored)),
        ("covered within the monthly limit per card-month",
         lambda: check_within_monthly_limits(stored)),
        ("no wallet below zero", lambda: check_no_wallet_below_zero(url, stored)),
        ("no debit refunded beyond its amount", lambda: check_refunds_within_debits(stored)),
        ("the topic, deduplicated, is the event store",
         lambda: check_topic_is_the_store(stored, messages, expect_republished=False)),
        ("read models are the fold of the event store (postings sum to zero overall)",
         lambda: check_read_models(url, stack.topic, stored, topic_ends)),
        ("the CQL node acknowledges only fsynced writes (commitlog_sync: batch)",
         lambda: _cql_syncs_before_acknowledging(session)),
        ("CQL tables are the fold of the event store",
         lambda: check_cql_tables(session, KEYSPACE, stored)),
    ]  # fmt: skip
    try:
        for name, run in checks:
            await asyncio.to_thread(verdict.check, name, run)
    finally:
        session.shutdown()
    if topic_ends != ends:
        verdict.failed.append(("the topic did not grow after the drain", f"{ends} {topic_ends}"))
    return verdict
