"""The Grafana dashboards of the deployment guide (k8s/monitoring/grafana/dashboards): their
titles and ids, and every PromQL expression in them checked twice: by promtool (it parses, as
a recording rule), and against the metrics the processes register (every metric and label it
names is exported by some process, so no panel stays empty for want of a series)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.integration.server_scripts import system_program
from tests.unit.test_deployment import (
    TARGET_LABELS,
    promql_grouping_labels,
    promql_metrics,
    registered_metrics,
)

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "k8s" / "monitoring" / "grafana"
GUIDE = {1001: "HealthPay Overview", 1002: "Event Sourcing Metrics", 1003: "MedCard Operations"}


def _dashboards() -> dict[int, dict[str, Any]]:
    boards = [json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))]
    return {board["id"]: board for board in boards}


def _expressions() -> list[tuple[str, str, str]]:
    return [
        (board["title"], panel["title"], target["expr"])
        for board in _dashboards().values()
        for panel in board["panels"]
        for target in panel["targets"]
    ]


def test_the_guides_three_dashboards_with_their_ids() -> None:
    boards = _dashboards()
    assert {board_id: board["title"] for board_id, board in boards.items()} == GUIDE
    assert len({board["uid"] for board in boards.values()}) == 3
    datasource = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = datasource["datasources"]
    for board in boards.values():
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), board["title"]
        for panel in board["panels"]:
            assert panel["targets"], (board["title"], panel["title"])
            assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}


def test_the_panels_cover_what_operators_watch() -> None:
    used = {metric for _, _, expr in _expressions() for metric in promql_metrics(expr)}
    for metric in (
        "http_requests_total",  # request rate and errors
        "http_request_duration_seconds_bucket",  # latency percentiles
        "healthpay_relay_lag_seconds",
        "kafka_consumer_lag",
        "healthpay_projection_parked_total",
        "healthpay_projection_batch_size_bucket",
        "healthpay_balances_batch_seconds_bucket",  # CQL write latency
        "healthpay_relay_published_events_total",
    ):
        assert metric in used, metric


async def test_every_expression_names_metrics_and_labels_the_processes_export() -> None:
    registered: dict[str, set[str]] = {}
    for names in (await registered_metrics()).values():
        for name, labels in names.items():
            registered.setdefault(name, set()).update(labels)
    for board, panel, expr in _expressions():
        used = promql_metrics(expr)
        assert used, (board, panel)
        for metric, labels in used.items():
            assert metric in registered, (board, panel, metric)
            assert labels <= registered[metric], (board, panel, metric, labels)
        available = set().union(*(registered[m] for m in used)) | TARGET_LABELS
        grouping = promql_grouping_labels(expr)
        assert grouping <= available, (board, panel, grouping - available)
        for label in re.findall(r"\{\{(\w+)\}\}", json.dumps(_legend(board, panel))):
            assert label in grouping, (board, panel, label)


def _legend(board: str, panel: str) -> list[str]:
    for candidate in _dashboards().values():
        for p in candidate["panels"]:
            if candidate["title"] == board and p["title"] == panel:
                return [target["legendFormat"] for target in p["targets"]]
    raise AssertionError((board, panel))


def test_every_expression_parses_with_promtool(tmp_path: Path) -> None:
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [
                    {"record": f"dashboard:expr:{n}", "expr": expr}
                    for n, (_, _, expr) in enumerate(_expressions())
                ],
            }
        ]
    }
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [system_program("promtool", "prometheus"), "check", "rules", str(tmp_path / "rules.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_expressions())} rules found" in result.stdout
