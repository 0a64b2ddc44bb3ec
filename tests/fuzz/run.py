"""`make fuzz`: the REST and GraphQL fuzz against the real services on private ports.

Starts the stack (tests/fuzz/stack.py), runs Schemathesis over the public OpenAPI document
as admin, ops, pharmacy and member (tests/fuzz/rest.py) and hypothesis-graphql over the
gateway's schema as the same roles (tests/fuzz/graphql.py), prints what it did, and exits
non-zero on any failure: a server error (a 504 for an object that does not exist is one), an
answer that breaks the document (status, content type, headers, body schema), a valid input
refused as malformed, an invalid one accepted, a broken link, a GraphQL internal error, or
fewer REST cases than --min-cases.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from pathlib import Path

from tests.fuzz.graphql import GraphqlResult, fuzz_role
from tests.fuzz.rest import RestResult, RoleRun, run_rest
from tests.fuzz.stack import ROLES, running_stack


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make fuzz", description=__doc__)
    parser.add_argument("--seconds", type=int, default=200, help="REST time budget, all roles")
    parser.add_argument("--min-cases", type=int, default=5000, help="REST cases at least")
    parser.add_argument("--graphql-examples", type=int, default=60, help="per role and kind")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="keep reports and logs here")
    return parser.parse_args(argv)


def _role_runs(seconds: int) -> list[RoleRun]:
    """Admin fuzzes longest (it may reach every operation); the others get a share each."""
    shares = {"admin": 0.45, "ops": 0.2, "pharmacy": 0.175, "member": 0.175}
    return [
        RoleRun(
            role, max(10, int(seconds * shares[role])), seeded_ids=role in ("pharmacy", "member")
        )
        for role in ROLES
    ]


def _print_rest(results: list[RestResult]) -> int:
    failures = 0
    per_operation: Counter[str] = Counter()
    statuses: dict[str, Counter[str]] = {}
    for result in results:
        for key, count in result.answers.items():
            method, path, status = key.split(" ")
            per_operation[f"{method} {path}"] += count
            statuses.setdefault(f"{method} {path}", Counter())[status] += count
    print("\nREST answers per operation (all roles):")
    undeclared = [op for op in per_operation if set(statuses[op]) == {"405"}]
    for operation in sorted(set(per_operation) - set(undeclared)):
        detail = ", ".join(f"{s}: {n}" for s, n in sorted(statuses[operation].items()))
        print(f"  {per_operation[operation]:6d}  {operation}  ({detail})")
    if undeclared:
        print(f"  {sum(per_operation[op] for op in undeclared):6d}  {len(undeclared)} methods"
              " the document does not declare on its paths (405: all)")  # fmt: skip
    print("\nREST per role:")
    for result in results:
        print(f"  {result.role:8s} {result.generated:6d} cases, exit {result.exit_code},"
              f" {len(result.failures)} failure kinds, {len(result.errors)} errors")  # fmt: skip
        for failure in result.failures:
            failures += int(failure.get("count", 1))
            operations = ", ".join(failure.get("operations", []))
            print(
                f"      {failure['code']} {failure['title']}: {failure.get('count')} ({operations})"
            )
        for error in result.errors:
            failures += 1
            print(f"      error: {str(error)[:300]}")
    return failures


def _print_graphql(results: list[GraphqlResult]) -> int:
    print("\nGraphQL per role:")
    for result in results:
        cases = ", ".join(f"{k}: {n}" for k, n in sorted(result.cases.items()))
        codes = ", ".join(f"{k}: {n}" for k, n in sorted(result.codes.items()))
        status = ", ".join(f"{k}: {n}" for k, n in sorted(result.statuses.items()))
        print(f"  {result.role:8s} {sum(result.cases.values()):5d} cases ({cases})")
        print(f"           HTTP {status}; error codes {codes or 'none'}")
        for failure in result.failures[:10]:
            print(f"      INTERNAL ERROR {failure[:600]}")
    return sum(len(r.failures) for r in results)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    started = time.monotonic()
    with running_stack() as stack:
        print(f"stack up in {time.monotonic() - started:.0f}s (seed {seed}); command service"
              f" {stack.commands_url}, gateway {stack.gateway_url}", flush=True)  # fmt: skip
        rest_started = time.monotonic()
        rest = run_rest(stack, _role_runs(args.seconds), seed, args.keep)
        graphql_started = time.monotonic()
        graphql = [fuzz_role(stack, role, args.graphql_examples, seed) for role in ROLES]
        graphql_took = time.monotonic() - graphql_started
        rest_took = graphql_started - rest_started
        crashed = stack.fleet.crashed()
    rest_failures = _print_rest(rest)
    graphql_failures = _print_graphql(graphql)
    cases = sum(r.generated for r in rest)
    graphql_cases = sum(sum(r.cases.values()) for r in graphql)
    took = time.monotonic() - started
    print(f"\nREST: {cases} cases, {rest_failures} failures ({rest_took:.0f}s); GraphQL:"
          f" {graphql_cases} cases, {graphql_failures} internal errors ({graphql_took:.0f}s);"
          f" {len(crashed)} processes crashed; {took:.0f}s in all")  # fmt: skip
    ok = rest_failures == 0 and graphql_failures == 0 and not crashed
    if cases < args.min_cases:
        print(f"too few REST cases: {cases} < {args.min_cases}")
        ok = False
    if any(r.exit_code not in (0, 1) for r in rest):
        print("Schemathesis did not complete a run (exit codes other than 0/1 above)")
        ok = False
    print("fuzz: " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
