"""The event store package is the one owner of SQL about the `events` table.

Appends and stream reads are in infrastructure/eventstore/postgres.py, the commit-safe reads
of the whole log in log_reads.py, every other question (operators' commands, the gateway's
read-your-writes check) in log_queries.py. Any other module of the product that selects from,
joins, writes or deletes `events` itself fails here. Tests, benchmarks and the chaos and fuzz
checkers are not product code and stay out on purpose: their checks of the stores must be
independent of the code they check.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("api_gateway", "cli", "command_service", "domain", "infrastructure",
           "projection_service", "schemas")  # fmt: skip
OWNER = ROOT / "infrastructure" / "eventstore"
# `events` as a table name after a SQL keyword (not `events_x`, `{held_events}`, "events e"
# in prose is rare enough: a comment that trips it can say "the event log" instead).
_NAMES_EVENTS = re.compile(
    r"\b(?:FROM|JOIN|INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?)\s+(?:public\.)?events\b"
    r"(?![\w.])",
    re.IGNORECASE,
)


def offenders(text: str) -> list[str]:
    """The lines of `text` that name the events table in SQL."""
    return [line.strip() for line in text.splitlines() if _NAMES_EVENTS.search(line)]


def test_the_pattern_finds_what_it_must_and_nothing_else() -> None:
    assert offenders("SELECT count(*) FROM events")
    assert offenders("  (SELECT e.version FROM events e WHERE")
    assert offenders("INSERT INTO events (aggregate_id) VALUES (%s)")
    assert offenders('x = "select 1 from public.events where position > 0"')
    assert offenders("DELETE FROM events WHERE true")
    assert not offenders("SELECT * FROM projection_held_events")
    assert not offenders("FROM {projection_held_events} WHERE aggregate_id = ANY(%s)")
    assert not offenders("SELECT 1 FROM events_archive")
    assert not offenders("INSERT INTO parked_events (event_id) VALUES (%s)")


def test_only_the_event_store_package_names_the_events_table() -> None:
    found: dict[str, list[str]] = {}
    owned = 0
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            lines = offenders(path.read_text())
            if path.is_relative_to(OWNER):
                owned += len(lines)
            elif lines:
                found[str(path.relative_to(ROOT))] = lines
    assert not found, f"SQL on `events` outside infrastructure/eventstore: {found}"
    assert owned > 0, "the owner's own queries must be found, or the scan reads nothing"
