"""The fuzz's own hooks, held to the Schemathesis they run in (no servers: the document only)."""

from __future__ import annotations

import schemathesis
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.stateful import classify_root_transitions, collect_transitions

import tests.fuzz.hooks  # noqa: F401  registers the hooks, as SCHEMATHESIS_HOOKS does
from schemas.api.openapi import API, READS, WRITES, build_openapi


def test_stateful_scenarios_start_where_cards_and_wallets_are_made() -> None:
    # Without the after_load_schema hook, Schemathesis takes primaryHolder.nationalId and the
    # X-Correlation-Id header for references to resources nothing makes, and never starts a
    # scenario by issuing a card or opening a wallet.
    schema = schemathesis.openapi.from_dict(
        build_openapi((*READS, *WRITES), title="all", version="test")
    )
    operations = [r.ok() for r in schema.get_all_operations() if isinstance(r, Ok)]
    roots = classify_root_transitions(
        operations, collect_transitions(operations), schema.analysis.dependency_graph
    )
    assert {f"POST {API}/medcards", f"POST {API}/wallets"} <= roots.reliable
