"""What reading a write's body exactly costs on top of pydantic's own parse (command_service/
bodies.py): µs per body for typical claims, printed; run with `.venv/bin/python
load-tests/body_bench.py`. One process, no server: the CPU time of the checks alone, best
of five rounds."""

from __future__ import annotations

import json
import time
import timeit
from collections.abc import Callable
from functools import partial

from command_service.bodies import decode
from schemas.api.commands import ClaimBody, IssueCardBody

CPU = time.process_time  # CPU seconds: other processes on the machine do not count
ITEM = {"drugCode": "D-100", "drugName": "Panadol Extra 500mg", "quantity": 2, "unitPrice": 10.5}
BODIES: list[tuple[str, type[ClaimBody] | type[IssueCardBody], bytes]] = [
    ("claim, no items", ClaimBody, b'{"prescriptionId": "rx-1", "totalAmount": 350.00}'),
    (
        "claim, 1 item, strings",
        ClaimBody,
        json.dumps(
            {
                "prescriptionId": "rx-2",
                "totalAmount": "21.00",
                "items": [{**ITEM, "unitPrice": "10.50"}],
            }
        ).encode(),
    ),
    (
        "claim, 20 items",
        ClaimBody,
        json.dumps(
            {"prescriptionId": "rx-3", "totalAmount": 420.00, "items": [ITEM] * 20}
        ).encode(),
    ),
    (
        "claim with a colon in a string",
        ClaimBody,
        b'{"prescriptionId": "rx:2024:1", "totalAmount": 350.00}',
    ),
    (
        "card issue",
        IssueCardBody,
        b'{"userId": "test-user-1", "cardType": "gold", "monthlyLimit": 5000}',
    ),
]


def cpu_us(run: Callable[[], object], runs: int) -> float:
    """CPU µs per call of `run`, best of five rounds."""
    return min(timeit.repeat(run, number=runs, repeat=5, timer=CPU)) / runs * 1e6


def main() -> None:
    print(f"{'body':34} {'bytes':>6} {'pydantic µs':>12} {'checked µs':>11} {'extra µs':>9}")
    for label, model, raw in BODIES:
        plain = cpu_us(partial(model.model_validate_json, raw), 20_000)
        checked = cpu_us(partial(decode, model, raw), 20_000)
        print(f"{label:34} {len(raw):>6} {plain:>12.2f} {checked:>11.2f} {checked - plain:>9.2f}")
    duplicate = b'{"prescriptionId": "rx-1", "totalAmount": "1.00", "totalAmount": "900.00"}'
    refused = cpu_us(partial(_refused, duplicate), 5_000)
    print(f"{'a duplicated key (refused)':34} {len(duplicate):>6} {'':>12} {refused:>11.2f}")


def _refused(raw: bytes) -> None:
    try:
        decode(ClaimBody, raw)
    except Exception:
        return
    raise AssertionError("a duplicated key was accepted")


if __name__ == "__main__":
    main()
