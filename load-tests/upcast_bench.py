"""What reading events through domain/upcasting.py costs: CPU µs per event, best of five
rounds, for a wallet.topped_up at the current version and at v1, through the projection's
decode (its hot path) and the command service's fold (event_from_payload); `upcast` alone on
a current payload is what every event pays for the version check. One process, no I/O; the
ratios are to the current version's decode measured in the same run. Run with
`.venv/bin/python load-tests/upcast_bench.py`."""

from __future__ import annotations

import time
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from uuid import uuid4

from domain.events import WalletToppedUp
from domain.postings import gateway_account, transfer, wallet_account
from domain.upcasting import event_from_payload, upcast
from infrastructure.eventstore.port import RecordedEvent
from projection_service.read_models.decoding import decode

CPU = time.process_time  # CPU seconds of this process: other processes do not count
RUNS = 50_000
TYPE = WalletToppedUp.event_type


def cpu_us(run: Callable[[], object], runs: int = RUNS) -> float:
    return min(timeit.repeat(run, number=runs, repeat=5, timer=CPU)) / runs * 1e6


def recorded(version: int) -> RecordedEvent:
    wallet, amount = uuid4(), Decimal("120.00")
    payload = WalletToppedUp(
        topup_id=uuid4(),
        gateway="fawry",
        gateway_reference="FWR-1",
        amount=amount,
        balance_after=amount,
        at=datetime(2026, 12, 1, 9, tzinfo=UTC),
        paid_at=None,
        postings=transfer(amount, gateway_account("fawry"), wallet_account(wallet)),
    ).payload()
    if version == 1:
        del payload["paid_at"]
    return RecordedEvent(
        1, uuid4(), wallet, "wallet", TYPE, version, 2, payload, {}, datetime.now(UTC)
    )


def main() -> None:
    current, v1 = recorded(WalletToppedUp.schema_version), recorded(1)
    base = cpu_us(partial(decode, current))
    check = cpu_us(partial(upcast, TYPE, 2, current.data))
    rows = [
        ("upcast, current version (the check alone)", check),
        ("projection decode, current version", base),
        ("projection decode, v1 (upcast + shape check)", cpu_us(partial(decode, v1))),
        ("fold: event_from_payload, current version",
         cpu_us(partial(event_from_payload, TYPE, 2, current.data), RUNS // 5)),
        ("fold: event_from_payload, v1",
         cpu_us(partial(event_from_payload, TYPE, 1, v1.data), RUNS // 5)),
    ]  # fmt: skip
    print(f"{'wallet.topped_up':48} {'µs CPU/event':>13} {'÷ decode current':>17}")
    for label, us in rows:
        print(f"{label:48} {us:>13.2f} {us / base:>17.2f}")


if __name__ == "__main__":
    main()
