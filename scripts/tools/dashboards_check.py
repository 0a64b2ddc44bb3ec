"""Evaluates every panel expression of the Grafana dashboards against a running Prometheus.

    python scripts/tools/dashboards_check.py PROMETHEUS_URL [--require-all]

Prints, per dashboard and panel, how many series each expression returns now. With
--require-all it exits 1 if any expression returns none (run it after traffic that touches
every panel: `make up`, then scripts/smoke.sh). Expressions that fail to evaluate always fail.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx

DASHBOARDS = Path(__file__).resolve().parents[2] / "k8s" / "monitoring" / "grafana" / "dashboards"


def main(url: str, require_all: bool) -> int:
    empty = failed = total = 0
    with httpx.Client(base_url=url, timeout=10) as client:
        for path in sorted(DASHBOARDS.glob("*.json")):
            board = json.loads(path.read_text())
            print(f"{board['title']} ({board['id']})")
            for panel in board["panels"]:
                for target in panel["targets"]:
                    total += 1
                    answer = client.get("/api/v1/query", params={"query": target["expr"]}).json()
                    if answer.get("status") != "success":
                        failed += 1
                        print(f"  FAIL  {panel['title']}: {answer.get('error')}")
                        continue
                    series = len(answer["data"]["result"])
                    empty += series == 0
                    mark = "ok   " if series else "empty"
                    print(f"  {mark} {series:>3} series  {panel['title']} [{target['refId']}]")
    with_data = total - empty - failed
    print(f"dashboards: {total} expressions, {with_data} with data, {empty} empty, {failed} failed")
    return 1 if failed or (require_all and empty) else 0


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--require-all"]
    if len(args) != 1:
        sys.exit(__doc__)
    sys.exit(main(args[0], "--require-all" in sys.argv))
