"""CPU per event of the relay's Python work from a fetched row to Kafka's key and value: the
old path (decode the stored JSON into a RecordedEvent, re-encode the envelope) against the
pass-through (envelope.stored_envelope splices the stored JSON text in), in the same run.

No servers: the rows are built as psycopg returns them from log_reads (UUIDs, a timezone-
aware timestamp, the payload as jsonb's text form, ", " and ": " separators, UTF-8 as it is),
from the events of a card's and wallet's whole life (every event type) and from its claim
adjudications alone (the bulk of a claim's bytes). Each round times `--repeat` passes over
the rows per path, alternating the paths, with CPU time (user + system) of this process
from /proc/self/stat; the figure is the median over `--rounds`. Both paths are first checked
to give a consumer the same document.

Usage: .venv/bin/python load-tests/relay_encode_bench.py [--rounds 7] [--cpu-per-round 1.0]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import orjson
from bench_common import ROOT, machine, machine_line, markdown_table, own_cpu

if str(ROOT) not in sys.path:  # run as a script: the project's packages live at the root
    sys.path.insert(0, str(ROOT))

from domain.events import ClaimAdjudicated, DomainEvent
from infrastructure.eventstore.envelope import stored_envelope
from infrastructure.eventstore.port import RecordedEvent
from infrastructure.eventstore.rows import recorded_event, stored_event
from tests.unit.scenarios import full_history

Row = tuple[Any, ...]


def old_envelope(event: RecordedEvent) -> bytes:
    """envelope.to_envelope as the relay ran it before the pass-through (a4a03a3), kept here
    verbatim as the baseline."""
    return orjson.dumps(
        {
            "envelope_version": 1,
            "event_id": str(event.event_id),
            "aggregate_id": str(event.aggregate_id),
            "aggregate_type": event.aggregate_type,
            "event_type": event.event_type,
            "schema_version": event.schema_version,
            "version": event.version,
            "position": event.position,
            "timestamp": event.timestamp.isoformat(),
            "data": event.data,
            "metadata": event.metadata,
        }
    )


def old_path(rows: Sequence[Row]) -> list[tuple[bytes, bytes]]:
    out = []
    for row in rows:
        event = recorded_event(row)
        out.append((str(event.aggregate_id).encode(), old_envelope(event)))
    return out


def new_path(rows: Sequence[Row]) -> list[tuple[bytes, bytes]]:
    out = []
    for row in rows:
        event = stored_event(row)
        out.append((str(event.aggregate_id).encode(), stored_envelope(event)))
    return out


def _jsonb_text(value: Any) -> str:
    # PostgreSQL prints jsonb with ", " and ": " and leaves non-ASCII unescaped.
    return json.dumps(value, ensure_ascii=False)


def rows_of(events: Sequence[tuple[str, UUID, DomainEvent]], at: datetime) -> list[Row]:
    versions: dict[UUID, int] = {}
    rows: list[Row] = []
    for position, (kind, stream, event) in enumerate(events, start=1):
        versions[stream] = versions.get(stream, 0) + 1
        metadata = {
            "correlation_id": str(uuid4()),
            "actor": {"role": "pharmacy", "sub": "pharmacy-7", "pharmacy_id": "PH-7"},
            "idempotency_key": f"claim-{position}",
            "causation_id": f"claim-{position}",
        }
        rows.append(
            (
                position,
                uuid4(),
                stream,
                kind,
                event.event_type,
                event.schema_version,
                versions[stream],
                _jsonb_text(event.payload()),
                _jsonb_text(metadata),
                at,
            )
        )
    return rows


def check_same_documents(rows: Sequence[Row]) -> None:
    for (old_key, old), (new_key, new) in zip(old_path(rows), new_path(rows), strict=True):
        if old_key != new_key or orjson.loads(old) != orjson.loads(new):
            raise SystemExit(f"the paths disagree:\n{old!r}\n{new!r}")


def cpu_per_event(path: Callable[[Sequence[Row]], object], rows: Sequence[Row], n: int) -> float:
    start = own_cpu()
    for _ in range(n):
        path(rows)
    return (own_cpu() - start) / (n * len(rows)) * 1e6


def measure(rows: Sequence[Row], rounds: int, cpu_per_round: float) -> dict[str, float]:
    # Passes per round so that the old path takes about `cpu_per_round` s: /proc counts ticks.
    probe = cpu_per_event(old_path, rows, max(1, 20_000 // len(rows)))
    repeat = max(1, int(cpu_per_round / (probe * 1e-6 * len(rows))))
    old: list[float] = []
    new: list[float] = []
    for _ in range(rounds):
        old.append(cpu_per_event(old_path, rows, repeat))
        new.append(cpu_per_event(new_path, rows, repeat))
    ratios = [n / o for o, n in zip(old, new, strict=True)]
    return {
        "old_us": statistics.median(old),
        "new_us": statistics.median(new),
        "ratio": statistics.median(ratios),
        "old_spread": max(old) - min(old),
        "new_spread": max(new) - min(new),
        "value_bytes": statistics.mean(len(v) for _, v in new_path(rows)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--cpu-per-round", type=float, default=1.0, help="CPU s per path")
    args = parser.parse_args(argv)
    ledger = full_history()
    card, wallet = uuid4(), uuid4()
    events = [("medcard", card, e) for e in ledger.card_log]
    events += [("wallet", wallet, e) for e in ledger.wallet_log]
    at = datetime.fromisoformat("2026-03-01T10:30:15.123456+00:00")
    mixes = {
        "every event type": rows_of(events, at),
        "claim adjudications": rows_of(
            [e for e in events if isinstance(e[2], ClaimAdjudicated)], at
        ),
    }
    print(machine_line(machine()))
    table = []
    for name, rows in mixes.items():
        check_same_documents(rows)
        m = measure(rows, args.rounds, args.cpu_per_round)
        table.append(
            (
                f"{name} ({len(rows)} events, value {m['value_bytes']:.0f} B)",
                f"{m['old_us']:.2f} (±{m['old_spread'] / 2:.2f})",
                f"{m['new_us']:.2f} (±{m['new_spread'] / 2:.2f})",
                f"{m['ratio']:.2f}",
            )
        )
    print(f"CPU µs per event, row -> Kafka key and value; median of {args.rounds} rounds")
    print(markdown_table(("rows", "old: decode + encode", "pass-through", "new / old"), table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
