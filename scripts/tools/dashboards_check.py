"""Evaluates every panel expression of the Grafana dashboards against a running Prometheus.

    python scripts/tools/dashboards_check.py PROMETHEUS_URL [--require-all] [--wait SECONDS]

Prints, per dashboard and panel, how many series each expression returns now. With
--require-all it exits 1 if any expression returns none (run it after traffic that touches
every panel: `make up`, then scripts/smoke.sh). Expressions that fail to evaluate always fail.
With --wait it evaluates again every 5 s (one scrape) until nothing is empty or the seconds
are spent: a rate() needs two scrapes of a series, and a process's first scrape after its
first event may come late, so a fixed sleep before one evaluation passes or fails by chance.
When something stays empty it prints every scrape target's health and last error, so a
failure says whether a process was down, unreachable or just quiet.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import httpx

DASHBOARDS = Path(__file__).resolve().parents[2] / "k8s" / "monitoring" / "grafana" / "dashboards"
SCRAPE_S = 5.0


def evaluate(client: httpx.Client, quiet: bool) -> tuple[int, int, int]:
    """(expressions, empty, failed) for every panel target of every dashboard."""
    empty = failed = total = 0
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        if not quiet:
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
                if not quiet:
                    mark = "ok   " if series else "empty"
                    print(f"  {mark} {series:>3} series  {panel['title']} [{target['refId']}]")
    return total, empty, failed


def print_targets(client: httpx.Client) -> None:
    targets = client.get("/api/v1/targets").json()["data"]["activeTargets"]
    print("scrape targets:")
    for target in sorted(targets, key=lambda t: (t["labels"]["job"], t["scrapeUrl"])):
        error = target.get("lastError") or ""
        print(
            f"  {target['health']:<7} {target['labels']['job']:<20} {target['scrapeUrl']}"
            f"  last scrape {target.get('lastScrape', '?')} {error}"
        )


def main(url: str, require_all: bool, wait_s: float) -> int:
    deadline = time.monotonic() + wait_s
    with httpx.Client(base_url=url, timeout=10) as client:
        attempts = 1
        while require_all and time.monotonic() < deadline:
            total, empty, failed = evaluate(client, quiet=True)
            if failed or not empty:
                break
            time.sleep(SCRAPE_S)
            attempts += 1
        total, empty, failed = evaluate(client, quiet=False)
        with_data = total - empty - failed
        print(
            f"dashboards: {total} expressions, {with_data} with data, {empty} empty, "
            f"{failed} failed (evaluation {attempts})"
        )
        if empty or failed:
            print_targets(client)
    return 1 if failed or (require_all and empty) else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--require-all", action="store_true")
    parser.add_argument("--wait", type=float, default=0.0, metavar="SECONDS")
    args = parser.parse_args()
    raise SystemExit(main(args.url, args.require_all, args.wait))
