"""The deployment files checked against the code, without Docker, Kubernetes or Prometheus.

docker-compose.yml, k8s/*.yaml, k8s/monitoring/{prometheus,alerts}.yml and
scripts/edge/nginx.compose.conf cannot be run on a machine without a Docker engine or a
cluster; what can be checked here is that they agree with the code they deploy:

- every `healthpay ...` command parses with the real CLI parser (cli/main.py);
- every env var they set is one the code reads, and every process gets the settings it cannot
  do without (the defaults point at 127.0.0.1);
- every metric and label the alert rules use is registered by the apps, built as they build it;
- every scrape target's port is a port the manifest declares and the process listens on;
- the Ingress backends are Services that select real pods on real ports;
- the kustomization lists every manifest;
- the compose edge routes like scripts/edge/nginx.conf.template and passes `nginx -t`.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import pwd
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

import cli.main as cli_main
from api_gateway.app import create_app as create_gateway
from command_service.app import create_app as create_command_service
from command_service.relay.relay import RelayMetrics
from infrastructure.cassandra.session import CqlConfig
from infrastructure.http.probes import LIVE, READY
from infrastructure.settings import Settings
from projection_service.balances.consumer import BalanceMetrics
from projection_service.worker import WorkerMetrics
from tests.api.support import api_settings, memory_store
from tests.integration.server_scripts import system_program
from tests.isolation import isolated_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
K8S = ROOT / "k8s"
MONITORING = K8S / "monitoring"
EDGE_TEMPLATE = ROOT / "scripts" / "edge" / "nginx.conf.template"
EDGE_COMPOSE = ROOT / "scripts" / "edge" / "nginx.compose.conf"

SECRETS = {
    "POSTGRES_URL",
    "JWT_SECRET",
    "JWT_SECRET_ID",
    "JWT_PREVIOUS_SECRET",
    "JWT_PREVIOUS_SECRET_ID",
    "FAWRY_SECURITY_KEY",
    "PAYMOB_HMAC_SECRET",
    "CEQUENS_API_KEY",
}
# Labels a scrape adds to every series (prometheus.yml's relabelling), and histograms' `le`.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "le"}


# ----------------------------------------------------------------------------- loading


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _k8s_objects() -> list[tuple[Path, dict[str, Any]]]:
    objects = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        objects += [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return objects


def _of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in _k8s_objects() if doc["kind"] == kind}


def _containers(deployment: dict[str, Any], init: bool = True) -> list[dict[str, Any]]:
    spec = deployment["spec"]["template"]["spec"]
    return [*(spec.get("initContainers", []) if init else []), *spec["containers"]]


def _compose_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _yaml(COMPOSE)["services"]
    return services


def _is_ours(service: dict[str, Any]) -> bool:
    return "build" in service or str(service.get("image", "")).startswith("healthpay/")


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*)|(:?\?)[^}]*)?\}")


def _interpolate(value: object) -> str:
    """Compose's ${VAR:-default} with VAR unset: the default (or nothing); ${VAR:?message}
    (compose refuses to start without VAR): a stand-in for the value the operator sets."""
    return _INTERPOLATION.sub(
        lambda m: f"<{m.group(1)} from the environment>" if m.group(3) else m.group(2) or "",
        str(value),
    )


def _compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment: use the mapping form"
    return {key: _interpolate(value) for key, value in env.items()}


# --------------------------------------------------------------------------------- CLI


class _StopAfterParse(Exception):
    pass


def parse_healthpay(argv: list[str]) -> argparse.Namespace:
    """argv as a container runs it, parsed by cli/main.py's own parser.

    cli/main.py builds its parser inside main() (no builder function to import), so this runs
    main() and stops it right after parse_args, where it first reads the settings."""
    assert argv[:1] == ["healthpay"], argv
    parsed: list[argparse.Namespace] = []
    real_parse_args = argparse.ArgumentParser.parse_args

    def spy(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
        namespace = real_parse_args(self, *args, **kwargs)
        parsed.append(namespace)
        return namespace

    fake_settings = mock.Mock()
    fake_settings.from_env.side_effect = _StopAfterParse
    with (
        mock.patch.object(argparse.ArgumentParser, "parse_args", spy),
        mock.patch.object(cli_main, "Settings", fake_settings),
        mock.patch("sys.stderr"),
    ):
        try:
            cli_main.main(argv[1:])
        except _StopAfterParse:
            return parsed[-1]
        except SystemExit as exc:
            pytest.fail(f"`{' '.join(argv)}` does not parse with the healthpay CLI ({exc})")
    pytest.fail(f"`{' '.join(argv)}` ran past the parser")


def _process(args: argparse.Namespace) -> str:
    """A name per kind of process: the subcommand (and db's subcommand)."""
    command: str = args.command
    return f"db {args.db_command}" if command == "db" else command


def _listen_port(args: argparse.Namespace, env: dict[str, str]) -> int | None:
    """The port a process serves HTTP (or /metrics) on, as cli/main.py picks it."""
    if args.command == "serve-commands":
        return int(args.port or env.get("PORT", isolated_settings().port))
    if args.command == "serve-gateway":
        return int(args.port)
    if args.command in ("relay", "project", "project-balances", "notify"):
        return int(args.metrics_port) if args.metrics_port else None
    return None


def _required_env(args: argparse.Namespace) -> set[str]:
    """Settings a process cannot do without in a container (their defaults are 127.0.0.1 or
    the development secret)."""
    cql = {"SCYLLA_HOSTS", "SCYLLA_DC"}
    command = args.command
    if command == "serve-commands":
        return {"POSTGRES_URL", "JWT_SECRET"}
    if command == "serve-gateway":
        return {"POSTGRES_URL", "JWT_SECRET", "KAFKA_BROKERS", "COMMAND_SERVICE_URL"} | cql
    if command in ("relay", "project"):
        return {"POSTGRES_URL", "KAFKA_BROKERS"}
    if command == "notify":  # CEQUENS_API_KEY: the Secret, created by hand (k8s/secrets.yaml)
        return {"POSTGRES_URL", "KAFKA_BROKERS"}
    if command == "project-balances":  # PostgreSQL: its dead letters (parked_events)
        return {"POSTGRES_URL", "KAFKA_BROKERS"} | cql
    if command == "kafka":  # kafka-init: creates the events topic
        return {"KAFKA_BROKERS"}
    if command == "idempotency":  # the purge of expired Idempotency-Key answers
        return {"POSTGRES_URL"}
    if command == "db":  # the CQL migrators queue on a PostgreSQL advisory lock
        only = args.only
        return {"POSTGRES_URL"} | (cql | {"SCYLLA_RF"} if only in (None, "cql") else set())
    raise AssertionError(f"no deployment expected to run `healthpay {command}`")


def _compose_commands() -> Iterator[tuple[str, dict[str, Any], list[str]]]:
    for name, service in _compose_services().items():
        command = service.get("command")
        if isinstance(command, list) and command and command[0] == "healthpay":
            yield name, service, [str(part) for part in command]


def _k8s_commands() -> Iterator[tuple[str, dict[str, Any], list[str]]]:
    """Every `healthpay` command a Deployment or a CronJob runs."""
    jobs = {name: job["spec"]["jobTemplate"] for name, job in _of_kind("CronJob").items()}
    for name, deployment in {**_of_kind("Deployment"), **jobs}.items():
        for container in _containers(deployment):
            argv = [*container.get("command", []), *container.get("args", [])]
            if argv and argv[0] == "healthpay":
                yield f"{name}/{container['name']}", container, [str(part) for part in argv]


LONG_RUNNING = {"serve-commands", "serve-gateway", "relay", "project", "project-balances"}


def test_parse_helper_rejects_what_the_cli_rejects() -> None:
    with pytest.raises(pytest.fail.Exception):
        parse_healthpay(["healthpay", "serve-commands", "--no-such-flag"])
    with pytest.raises(pytest.fail.Exception):
        parse_healthpay(["healthpay", "project", "--metrics-port", "x"])
    assert parse_healthpay(["healthpay", "relay", "--metrics-port", "3002"]).metrics_port == 3002


def test_every_compose_command_parses() -> None:
    processes = set()
    for _, _, argv in _compose_commands():
        processes.add(_process(parse_healthpay(argv)))
    assert LONG_RUNNING | {"db migrate"} <= processes, processes


def test_every_k8s_command_parses() -> None:
    processes = set()
    for _, _, argv in _k8s_commands():
        processes.add(_process(parse_healthpay(argv)))
    assert LONG_RUNNING | {"db migrate", "idempotency"} <= processes, processes


def test_servers_in_containers_listen_on_every_interface() -> None:
    # the CLI's default host is 127.0.0.1: unreachable from another container or pod
    commands = [*_compose_commands(), *_k8s_commands()]
    for where, _, argv in commands:
        args = parse_healthpay(argv)
        if args.command in ("serve-commands", "serve-gateway"):
            assert args.host == "0.0.0.0", (where, argv)
        if args.command in ("relay", "project", "project-balances", "notify"):
            # scraped by Prometheus from another pod or container
            assert args.metrics_host == "0.0.0.0", (where, argv)


# Which image runs which process: the one its Dockerfile's CMD starts, plus the processes that
# share its code (the relay and the SQL migrations ride with the command service, the balance
# projection with the read-model projection).
IMAGES = {
    "command-service": "healthpay/command-service:v2.0",
    "relay": "healthpay/command-service:v2.0",
    "projection-service": "healthpay/projection-service:v2.0",
    "balance-projection": "healthpay/projection-service:v2.0",
    "api-gateway": "healthpay/api-gateway:v2.0",
    "notifier": "healthpay/projection-service:v2.0",
}


def test_k8s_deployments_are_the_guides_with_their_replicas_and_images() -> None:
    deployments = _of_kind("Deployment")
    replicas = {name: d["spec"]["replicas"] for name, d in deployments.items()}
    assert replicas == {
        "command-service": 5,
        "api-gateway": 3,
        "relay": 2,  # one active (the advisory lock), one standby
        "projection-service": 3,
        "balance-projection": 3,
        "notifier": 2,
    }
    for name, deployment in deployments.items():
        assert {c["image"] for c in _containers(deployment, init=False)} == {IMAGES[name]}, name
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        for container in _containers(deployment, init=False):
            resources = container.get("resources", {})
            assert "requests" in resources, name
            assert "memory" in resources.get("limits", {}), name
            assert {"readinessProbe", "livenessProbe"} <= set(container), name


def _pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, deployment in _of_kind("Deployment").items():
        yield name, deployment["spec"]["template"]["spec"]
    for name, job in _of_kind("CronJob").items():
        yield name, job["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def test_every_pod_runs_non_root_read_only_without_capabilities() -> None:
    pods = dict(_pod_specs())
    assert set(_of_kind("Deployment")) | {"idempotency-purge"} <= set(pods)
    for name, pod in pods.items():
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True, name
        assert security["runAsUser"] > 0, name
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            where = f"{name}/{container['name']}"
            own = container["securityContext"]
            assert own["allowPrivilegeEscalation"] is False, where
            assert own["readOnlyRootFilesystem"] is True, where
            assert own["capabilities"] == {"drop": ["ALL"]}, where
            assert "runAsUser" not in own or own["runAsUser"] > 0, where
    namespace = _of_kind("Namespace")["healthpay"]["metadata"]["labels"]
    assert namespace["pod-security.kubernetes.io/enforce"] == "restricted"


def _selects(selector: dict[str, Any], deployment: dict[str, Any]) -> bool:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    return bool(selector["matchLabels"].items() <= labels.items())


def test_every_deployment_has_a_disruption_budget_and_bounded_autoscaling() -> None:
    deployments, budgets = _of_kind("Deployment"), _of_kind("PodDisruptionBudget")
    scalers = _of_kind("HorizontalPodAutoscaler")
    partitions = _topic_partitions()
    for name, deployment in deployments.items():
        (budget,) = [b for b in budgets.values() if _selects(b["spec"]["selector"], deployment)]
        spec = budget["spec"]
        if "minAvailable" in spec:
            assert 0 < spec["minAvailable"] < deployment["spec"]["replicas"], name
        else:
            assert spec["maxUnavailable"] == 1, name
        targeting = [s for s in scalers.values() if s["spec"]["scaleTargetRef"]["name"] == name]
        if name == "relay":  # only the lock holder publishes: more replicas would add nothing
            assert not targeting
            continue
        (scaler,) = targeting
        low, high = scaler["spec"]["minReplicas"], scaler["spec"]["maxReplicas"]
        assert scaler["spec"]["scaleTargetRef"]["kind"] == "Deployment", name
        # the guide's replicas are the floor; a consumer group stops at the partition count
        assert low == deployment["spec"]["replicas"] < high, name
        if name in ("projection-service", "balance-projection", "notifier"):
            assert high <= partitions, name
        (metric,) = scaler["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu", name
        for container in _containers(deployment, init=False):
            assert "cpu" in container["resources"]["requests"], name  # what 70 % is of


def _allowed_from(port: int, deployment: dict[str, Any]) -> list[dict[str, Any]]:
    """The peers the NetworkPolicies let reach `port` of the deployment's pods."""
    peers: list[dict[str, Any]] = []
    for policy in _of_kind("NetworkPolicy").values():
        selector = policy["spec"]["podSelector"]
        if selector and not _selects(selector, deployment):
            continue
        for rule in policy["spec"].get("ingress", []):
            if any(p["port"] == port for p in rule.get("ports", [])):
                peers += rule["from"]
    return peers


def test_network_policies_let_only_the_edge_reach_the_services() -> None:
    policies, deployments = _of_kind("NetworkPolicy"), _of_kind("Deployment")
    deny = [p for p in policies.values() if p["spec"]["podSelector"] == {}]
    assert any("ingress" not in p["spec"] and p["spec"]["policyTypes"] == ["Ingress"] for p in deny)
    edge = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    prometheus = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    }
    gateway = {"podSelector": {"matchLabels": {"app": "api-gateway"}}}
    expected = {
        "api-gateway": [edge, prometheus],
        "command-service": [edge, gateway, prometheus],
    }
    for name, deployment in deployments.items():
        for container in _containers(deployment, init=False):
            for port in container["ports"]:
                peers = _allowed_from(port["containerPort"], deployment)
                assert sorted(map(str, peers)) == sorted(
                    map(str, expected.get(name, [prometheus]))
                ), (
                    name,
                    port,
                )


GUIDE = ROOT / "docs" / "product-spec.md"
# What the guide's each `kubectl apply -f k8s/FILE` creates.
GUIDE_FILES = {
    "namespace.yaml": {"Namespace"},
    "config-maps.yaml": {"ConfigMap"},
    "secrets.yaml": {"Secret"},
    "services.yaml": {"Service", "NetworkPolicy"},
    "deployments.yaml": {"Deployment", "PodDisruptionBudget", "HorizontalPodAutoscaler"},
    "ingress.yaml": {"Ingress"},
}


def test_the_guides_commands_name_files_and_deployments_that_exist() -> None:
    guide = GUIDE.read_text()
    applied = re.findall(r"kubectl apply -f k8s/([\w.-]+)", guide)
    assert applied == list(GUIDE_FILES)[:5], applied  # its order; ingress.yaml comes later
    assert "# k8s/ingress.yaml" in guide
    for name, kinds in GUIDE_FILES.items():
        docs = [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]
        assert {doc["kind"] for doc in docs} == kinds, name
    dockerfiles = re.findall(r"docker build -t (\S+) -f (Dockerfile\.\w+) \.", guide)
    assert len(dockerfiles) == 3
    for image, dockerfile in dockerfiles:
        assert (ROOT / dockerfile).is_file(), dockerfile
        assert image in IMAGES.values(), image
    deployments = _of_kind("Deployment")
    scaled = re.findall(r"kubectl scale deployment ([\w-]+) --replicas=(\d+)", guide)
    assert {name for name, _ in scaled} == {"projection-service", "command-service", "api-gateway"}
    for name, replicas in scaled:
        if replicas != "0":  # the rollback's scale-down
            assert deployments[name]["spec"]["replicas"] == int(replicas), name


def test_every_process_refuses_to_start_with_the_placeholder_secret() -> None:
    """`kubectl apply -f k8s/secrets.yaml` unedited: each pod's command stops at once (exit 2,
    one line naming the setting), the relay and the projections too."""
    commands = list(_k8s_commands())
    assert {_process(parse_healthpay(argv)) for _, _, argv in commands} >= LONG_RUNNING
    for where, container, argv in commands:
        with (
            mock.patch.dict(os.environ, _k8s_env(container), clear=True),
            mock.patch("sys.stderr", new_callable=io.StringIO) as stderr,
        ):
            status = cli_main.main(argv[1:])
        assert status == 2, where
        assert "JWT_SECRET must be at least 32 bytes" in stderr.getvalue(), where


def test_consumer_groups_fit_the_topic() -> None:
    # each partition goes to one member of a group: more replicas than partitions idle
    partitions = _topic_partitions()
    for name in ("projection-service", "balance-projection", "notifier"):
        assert _of_kind("Deployment")[name]["spec"]["replicas"] <= partitions


# ------------------------------------------------------------------------- environment


class _Recorder(dict[str, str]):
    """An empty environment that remembers which variables were asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return default


def env_read_by_code() -> set[str]:
    """Every env var the processes read: Settings' and CqlConfig's (SCYLLA_DC/_RF)."""
    env = _Recorder()
    CqlConfig.from_settings(isolated_settings(), env)
    return Settings.env_names() | env.asked


def test_the_env_recorder_sees_what_the_code_reads() -> None:
    known = env_read_by_code()
    assert {"POSTGRES_URL", "JWT_SECRET", "KAFKA_BROKERS", "SCYLLA_HOSTS"} <= known
    assert {"SCYLLA_DC", "SCYLLA_RF", "COMMAND_SERVICE_URL"} <= known
    assert "POSTGRESQL_URL" not in known


def test_compose_sets_only_env_the_code_reads_and_all_it_needs() -> None:
    known = env_read_by_code()
    services = _compose_services()
    for name, service in services.items():
        if _is_ours(service):
            assert set(_compose_env(service)) <= known, (name, set(_compose_env(service)) - known)
    for name, service, argv in _compose_commands():
        env = _compose_env(service)
        missing = _required_env(parse_healthpay(argv)) - {k for k, v in env.items() if v}
        assert not missing, (name, missing)


def test_compose_env_points_at_compose_services() -> None:
    services = _compose_services()
    postgres = _compose_env(services["postgres"])
    for name, service, _ in _compose_commands():
        env = _compose_env(service)
        url = urlsplit(env["POSTGRES_URL"]) if "POSTGRES_URL" in env else None
        if url is not None:
            assert url.hostname in services, (name, url.hostname)
            assert (url.username, url.password, url.path.lstrip("/")) == (
                postgres["POSTGRES_USER"],
                postgres["POSTGRES_PASSWORD"],
                postgres["POSTGRES_DB"],
            ), name
        for var in ("KAFKA_BROKERS", "SCYLLA_HOSTS"):
            for hostport in filter(None, env.get(var, "").split(",")):
                assert hostport.split(":")[0] in services, (name, var, hostport)
        if "COMMAND_SERVICE_URL" in env:
            assert urlsplit(env["COMMAND_SERVICE_URL"]).hostname in services, name


def test_compose_takes_secrets_and_origins_from_the_environment() -> None:
    for name, service in _compose_services().items():
        raw = service.get("environment") or {}
        if not _is_ours(service):
            continue
        # required: compose refuses to start without it (no default secret in the repository)
        assert str(raw["JWT_SECRET"]).startswith("${JWT_SECRET:?"), name
        assert str(raw["CORS_ORIGINS"]).startswith("${CORS_ORIGINS"), name


def test_compose_kafka_topic_is_the_one_the_processes_use() -> None:
    topics = {
        _compose_env(s).get("KAFKA_TOPIC", isolated_settings().kafka_topic)
        for _, s, _ in _compose_commands()
    }
    assert len(topics) == 1, topics
    assert "kafka-init" in {name for name, _, _ in _compose_commands()}
    cluster_id = _compose_env(_compose_services()["kafka"])["CLUSTER_ID"]
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16, "KRaft wants a base64 UUID"


def _topic_partitions() -> int:
    """The partitions kafka-init gives the topic: `healthpay kafka create-topic` with the
    KAFKA_PARTITIONS compose passes (unset: the settings' default)."""
    init = _compose_services()["kafka-init"]
    assert init["command"] == ["healthpay", "kafka", "create-topic"]
    raw = _compose_env(init).get("KAFKA_PARTITIONS")
    return int(raw) if raw else isolated_settings().kafka_partitions


def _k8s_env(container: dict[str, Any]) -> dict[str, str]:
    config_maps, secrets = _of_kind("ConfigMap"), _of_kind("Secret")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config_maps[source["configMapRef"]["name"]]["data"])
        if "secretRef" in source:
            env.update(secrets[source["secretRef"]["name"]]["stringData"])
    env.update({item["name"]: str(item.get("value", "")) for item in container.get("env", [])})
    return env


def test_k8s_config_and_secrets_hold_only_env_the_code_reads() -> None:
    known = env_read_by_code()
    for name, config_map in _of_kind("ConfigMap").items():
        keys = set(config_map["data"])
        assert keys <= known, (name, keys - known)
        assert not keys & SECRETS, (name, "secrets belong in the Secret")
    for name, secret in _of_kind("Secret").items():
        assert set(secret["stringData"]) <= SECRETS, name
    for name, deployment in _of_kind("Deployment").items():
        for container in _containers(deployment):
            names = {item["name"] for item in container.get("env", [])}
            assert names <= known, (name, names - known)


def test_every_k8s_process_gets_the_settings_it_needs() -> None:
    for where, container, argv in _k8s_commands():
        env = _k8s_env(container)
        missing = _required_env(parse_healthpay(argv)) - {k for k, v in env.items() if v}
        assert not missing, (where, missing)


def test_k8s_command_service_url_names_the_command_service() -> None:
    services = _of_kind("Service")
    for where, container, _ in _k8s_commands():
        url = _k8s_env(container).get("COMMAND_SERVICE_URL")
        if url:
            parts = urlsplit(url)
            assert parts.hostname is not None
            service = services[parts.hostname.split(".")[0]]
            assert parts.port in {p["port"] for p in service["spec"]["ports"]}, where


# ---------------------------------------------------------------------- compose wiring


def test_compose_depends_on_converges() -> None:
    services = _compose_services()
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in services.items():
        for dependency, how in (service.get("depends_on") or {}).items():
            assert dependency in services, (name, dependency)
            assert how["condition"] in conditions, (name, dependency)
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], (name, dependency)
            if how["condition"] == "service_completed_successfully":
                assert services[dependency].get("restart", "no") == "no", (name, dependency)
        if service.get("restart", "no") != "no":
            assert "healthcheck" in service, f"{name}: a long-running service needs one"

    def closure(name: str, seen: tuple[str, ...] = ()) -> set[str]:
        assert name not in seen, f"depends_on cycle: {' -> '.join((*seen, name))}"
        found = set()
        for dependency in services[name].get("depends_on") or {}:
            found |= {dependency} | closure(dependency, (*seen, name))
        return found

    for name, _, argv in _compose_commands():
        needs = closure(name)
        required = _required_env(parse_healthpay(argv))
        if "POSTGRES_URL" in required:
            assert {"postgres", "migrate"} - {name} <= needs, name
        if "KAFKA_BROKERS" in required:
            assert {"kafka", "kafka-init"} - {name} <= needs, name
        if "SCYLLA_HOSTS" in required:
            assert "scylla" in needs, name
    assert closure("edge") >= {"command-service", "api-gateway"}


def _healthcheck_port(service: dict[str, Any]) -> int:
    test = " ".join(str(part) for part in service["healthcheck"]["test"])
    found = re.search(r"127\.0\.0\.1:(\d+)/", test)
    assert found, test
    return int(found.group(1))


def test_compose_healthchecks_ask_the_port_the_process_serves() -> None:
    for name, service, argv in _compose_commands():
        args = parse_healthpay(argv)
        if args.command in LONG_RUNNING:
            assert _healthcheck_port(service) == _listen_port(args, _compose_env(service)), name


# ------------------------------------------------------------------------ the edge


def _block(text: str, head: str) -> str:
    start = text.index(head)
    end = text.index("}", start)
    return " ".join(text[start:end].split())


def test_compose_edge_routes_like_the_template() -> None:
    template, compose = EDGE_TEMPLATE.read_text(), EDGE_COMPOSE.read_text()
    for head in ("map $uri $card_id", "map $request_method $api_upstream"):
        assert _block(compose, head) == _block(template, head), head
    for rule in (
        r"upstream commands \{\s*hash \$card_id consistent;",
        r"location /api/v1/ \{\s*proxy_pass http://\$api_upstream;\s*\}",
        r"location / \{\s*proxy_pass http://gateway;\s*\}",
        r"proxy_next_upstream error timeout;",
        r"keepalive_timeout 4s;",
    ):
        assert re.search(rule, template), rule
        assert re.search(rule, compose), rule


def _upstream_servers(text: str) -> dict[str, list[tuple[str, int]]]:
    servers: dict[str, list[tuple[str, int]]] = {}
    for name, body in re.findall(r"upstream (\w+) \{(.*?)\}", text, re.S):
        found = re.findall(r"^\s*server ([\w.-]+):(\d+);", body, re.M)
        servers[name] = [(host, int(port)) for host, port in found]
    return servers


def test_compose_edge_upstreams_are_the_compose_processes() -> None:
    services = _compose_services()
    upstreams = _upstream_servers(EDGE_COMPOSE.read_text())
    expected = {"commands": "serve-commands", "gateway": "serve-gateway"}
    assert set(upstreams) == set(expected)
    for upstream, command in expected.items():
        assert upstreams[upstream], upstream
        for host, port in upstreams[upstream]:
            service = services[host]
            args = parse_healthpay([str(part) for part in service["command"]])
            assert args.command == command, (upstream, host)
            assert port == _listen_port(args, _compose_env(service)), (upstream, host)
    edge = services["edge"]
    assert "127.0.0.1:3000:3000" in edge["ports"]
    assert "./scripts/edge/nginx.compose.conf:/etc/nginx/nginx.conf:ro" in edge["volumes"]
    assert re.search(r"listen 3000\b", EDGE_COMPOSE.read_text())


def test_compose_edge_config_passes_nginx_t(tmp_path: Path) -> None:
    # Compose names resolve only inside the compose network: check the syntax with 127.0.0.1
    # for every upstream host (nginx -t resolves them), everything else as shipped.
    nginx = system_program("nginx")
    text = EDGE_COMPOSE.read_text()
    for hosts in _upstream_servers(text).values():
        for host, port in hosts:
            text = text.replace(f"server {host}:{port};", f"server 127.0.0.1:{port};")
    user = re.search(r"^user (\w+);", text, re.M)
    if user:
        try:
            pwd.getpwnam(user.group(1))
        except KeyError:  # the image's user; this machine may not have it
            text = text.replace(user.group(0), "")
    (tmp_path / "nginx.conf").write_text(text)
    error_log = ["-e", str(tmp_path / "error.log")]
    result = subprocess.run(
        [nginx, "-t", "-p", f"{tmp_path}/", "-c", str(tmp_path / "nginx.conf"), *error_log],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------------- metrics


def _names_in_exposition(text: str) -> dict[str, set[str]]:
    """Sample name -> label names, for every name a scrape of this text can show."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("_count", "_sum", "_created"),
        "gauge": ("",),
    }
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for suffix in suffixes.get(family.type, ("",)):
            names.setdefault(family.name + suffix, set())
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def _registry_names(registry: CollectorRegistry, owner: object) -> dict[str, set[str]]:
    names = _names_in_exposition(generate_latest(registry).decode())
    # labelled metrics without a child yet show no sample: take their label names from the
    # metric objects the process holds
    for metric in vars(owner).values():
        if isinstance(metric, MetricWrapperBase):
            labels = set(getattr(metric, "_labelnames", ()))
            for name in names:
                if name == metric._name or name.startswith(metric._name + "_"):
                    names[name] |= labels | ({"le"} if name.endswith("_bucket") else set())
    return names


async def _scrape(app: Any, first: str) -> dict[str, set[str]]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://metrics.test") as client:
        assert (await client.get(first)).status_code == 200
        response = await client.get("/metrics")
        assert response.status_code == 200
        return _names_in_exposition(response.text)


async def registered_metrics() -> dict[str, dict[str, set[str]]]:
    """Per process: every metric name it exposes, with its label names."""
    settings = api_settings()
    command_service = create_command_service(settings, memory_store)
    async with command_service.router.lifespan_context(command_service):
        commands = await _scrape(command_service, "/health")
    gateway = await _scrape(create_gateway(settings), "/metrics")  # no lifespan: no PostgreSQL
    relay, worker, balances = RelayMetrics(), WorkerMetrics(), BalanceMetrics()
    return {
        "command-service": commands,
        "api-gateway": gateway,
        "relay": _registry_names(relay.registry, relay),
        "projection-service": _registry_names(worker.registry, worker),
        "balance-projection": _registry_names(balances.registry, balances),
    }


_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_KEYWORDS |= {"and", "or", "unless", "bool", "offset"}


def promql_metrics(expr: str) -> dict[str, set[str]]:
    """Metric name -> label names its matchers use, from a PromQL expression (simple cases)."""
    used: dict[str, set[str]] = {}
    for name, matchers in re.findall(r"([A-Za-z_:][\w:]*)\s*\{([^}]*)\}", expr):
        used.setdefault(name, set()).update(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers))
    bare = re.sub(r'"[^"]*"', "", expr)
    bare = re.sub(r"\{[^}]*\}", "", bare)
    bare = re.sub(r"\[[^\]]*\]", "", bare)
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", bare)
    for token in re.findall(r"(?<![\w.])([A-Za-z_:][\w:]*)\b(?!\s*\()", bare):
        if token not in _KEYWORDS:
            used.setdefault(token, set())
    return used


def promql_grouping_labels(expr: str) -> set[str]:
    labels: set[str] = set()
    for group in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        labels |= {label.strip() for label in group.split(",") if label.strip()}
    return labels


def test_promql_parsing_finds_metrics_and_labels() -> None:
    expr = (
        'sum by (service, le) (rate(http_request_duration_seconds_bucket{route!="/x"}[5m]))'
        " / max(healthpay_relay_lag_seconds) > 0.1"
    )
    assert promql_metrics(expr) == {
        "http_request_duration_seconds_bucket": {"route"},
        "healthpay_relay_lag_seconds": set(),
    }
    assert promql_grouping_labels(expr) == {"service", "le"}


def _alert_rules() -> list[dict[str, Any]]:
    rules = [
        rule for group in _yaml(MONITORING / "alerts.yml")["groups"] for rule in group["rules"]
    ]
    return rules


async def test_every_alert_uses_registered_metrics_and_labels() -> None:
    per_process = await registered_metrics()
    registered: dict[str, set[str]] = {}
    for names in per_process.values():
        for name, labels in names.items():
            registered.setdefault(name, set()).update(labels)
    rules = _alert_rules()
    assert {"HighErrorRate", "SlowResponse", "EventLag", "RelayLag"} <= {r["alert"] for r in rules}
    for rule in rules:
        used = promql_metrics(rule["expr"])
        assert used, rule["alert"]
        for metric, labels in used.items():
            assert metric in registered, (rule["alert"], metric)
            assert labels <= registered[metric], (rule["alert"], metric, labels)
        available = set().union(*(registered[m] for m in used)) | TARGET_LABELS
        grouping = promql_grouping_labels(rule["expr"])
        assert grouping <= available, (rule["alert"], grouping - available)
        assert "summary" in rule["annotations"], rule["alert"]
    # the guide's three, on our names
    by_name = {r["alert"]: r["expr"] for r in rules}
    assert 'status=~"5.."' in by_name["HighErrorRate"]
    assert "http_request_duration_seconds_bucket" in by_name["SlowResponse"]
    assert "0.1" in by_name["SlowResponse"]
    assert re.search(r"kafka_consumer_lag\)? > 1000", by_name["EventLag"])
    if "healthpay_projection_parked_total" in registered:
        assert any("healthpay_projection_parked_total" in e for e in by_name.values())


# --------------------------------------------------------------------------- scraping


def _keep_regex(job: dict[str, Any], source: str) -> str:
    for rule in job.get("relabel_configs", []):
        if rule.get("action") == "keep" and rule["source_labels"] == [source]:
            return str(rule["regex"])
    raise AssertionError(f"{job['job_name']}: no keep rule on {source}")


def _probe_ports(container: dict[str, Any]) -> set[int | str]:
    ports: set[int | str] = set()
    for probe in ("readinessProbe", "livenessProbe"):
        spec = container[probe]
        if "httpGet" in spec:
            ports.add(spec["httpGet"]["port"])
        else:
            command = " ".join(spec["exec"]["command"])
            ports |= {int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)/", command)}
    return ports


def test_every_scrape_target_is_a_port_the_manifest_declares_and_the_process_serves() -> None:
    config = _yaml(MONITORING / "prometheus.yml")
    assert [MONITORING / f for f in config["rule_files"]] == [MONITORING / "alerts.yml"]
    deployments = _of_kind("Deployment")
    scraped = set()
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
        app, port = (
            _keep_regex(job, "__meta_kubernetes_pod_label_app"),
            int(_keep_regex(job, "__meta_kubernetes_pod_container_port_number")),
        )
        matching = [
            d
            for d in deployments.values()
            if d["spec"]["template"]["metadata"]["labels"].get("app") == app
        ]
        assert len(matching) == 1, (job["job_name"], app)
        (container,) = [
            c
            for c in _containers(matching[0], init=False)
            if port in {p["containerPort"] for p in c.get("ports", [])}
        ]
        args = parse_healthpay([*container["command"], *container.get("args", [])])
        assert _listen_port(args, _k8s_env(container)) == port, (job["job_name"], port)
        scraped.add(matching[0]["metadata"]["name"])
    assert scraped == set(deployments), set(deployments) - scraped


def test_probes_ask_the_port_the_process_serves() -> None:
    for name, deployment in _of_kind("Deployment").items():
        for container in _containers(deployment, init=False):
            args = parse_healthpay([*container["command"], *container.get("args", [])])
            port = _listen_port(args, _k8s_env(container))
            declared = {p["containerPort"]: p["name"] for p in container["ports"]}
            for probe_port in _probe_ports(container):
                number = probe_port if isinstance(probe_port, int) else None
                if number is None:
                    named = {v: k for k, v in declared.items()}
                    assert probe_port in named, (name, probe_port)
                    number = named[str(probe_port)]
                assert number == port, (name, probe_port, port)


async def test_http_services_probe_liveness_and_readiness_routes_they_serve() -> None:
    """Liveness asks the process alone, readiness its stores (infrastructure/http/probes.py);
    the command service answers both over the in-memory store, so both routes are its own."""
    probed = {}
    for name, deployment in _of_kind("Deployment").items():
        for container in _containers(deployment, init=False):
            args = parse_healthpay([*container["command"], *container.get("args", [])])
            if args.command in {"serve-commands", "serve-gateway"}:
                paths = {
                    p: container[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe")
                }
                probed[name] = paths
    assert probed == {
        name: {"livenessProbe": LIVE, "readinessProbe": READY}
        for name in ("command-service", "api-gateway")
    }
    app = create_command_service(api_settings(), memory_store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://probe.test") as client:
            for path in (LIVE, READY):
                assert (await client.get(path)).status_code == 200, path


# The relay and the projections serve /metrics on --metrics-host (127.0.0.1 by default, for a
# laptop; the manifests say 0.0.0.0 so Prometheus in another pod can scrape them).
def _relay(settings: Settings, port: int, host: str) -> None:
    from command_service.relay.process import run_relay

    run_relay(settings, port, host)


def _projection(settings: Settings, port: int, host: str) -> None:
    from projection_service.process import run_projection_worker

    run_projection_worker(settings, port, host)


def _balances(settings: Settings, port: int, host: str) -> None:
    from projection_service.balances.process import run_balance_projection

    run_balance_projection(settings, port, host)


def _notifier(settings: Settings, port: int, host: str) -> None:
    from projection_service.notifier.process import run_notifier

    run_notifier(settings.model_copy(update={"sms_enabled": False}), port, host)


@pytest.mark.parametrize(
    ("module", "run"),
    [
        ("command_service.relay.process", _relay),
        ("projection_service.process", _projection),
        ("projection_service.balances.process", _balances),
        ("projection_service.notifier.process", _notifier),
    ],
)
def test_worker_metrics_listen_where_they_are_told(
    module: str, run: Callable[[Settings, int, str], None]
) -> None:
    addresses: list[str] = []

    def fake_start_http_server(port: int, addr: str = "0.0.0.0", **kwargs: Any) -> None:
        addresses.append(addr)
        raise _StopAfterParse  # stop before the process connects anywhere

    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with (
            mock.patch(f"{module}.start_http_server", fake_start_http_server),
            pytest.raises(_StopAfterParse),
        ):
            run(isolated_settings(), 3999, "0.0.0.0")
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
    assert addresses, "the metrics server was never started"
    assert addresses == ["0.0.0.0"]


# ---------------------------------------------------------------------------- ingress


def test_ingress_backends_are_services_that_select_pods_on_declared_ports() -> None:
    services, deployments = _of_kind("Service"), _of_kind("Deployment")
    backends = 0
    for name, ingress in _of_kind("Ingress").items():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["name"] in services, (name, backend["name"])
                ports = {p["port"] for p in services[backend["name"]]["spec"]["ports"]}
                assert backend["port"]["number"] in ports, (name, backend)
                backends += 1
    assert backends >= 3
    for name, service in services.items():
        selector = service["spec"]["selector"]
        selected = [
            d
            for d in deployments.values()
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert selected, (name, "selects no pods")
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            for deployment in selected:
                declared = {
                    key
                    for c in _containers(deployment, init=False)
                    for p in c.get("ports", [])
                    for key in (p["containerPort"], p.get("name"))
                }
                assert target in declared, (name, target)


# ------------------------------------------------------------------------ kustomization


def test_kustomization_lists_every_manifest() -> None:
    kustomization = _yaml(K8S / "kustomization.yaml")
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed)), "listed twice"
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    # applying the placeholders would overwrite the real secret
    assert "secrets.yaml" in manifests
    assert set(listed) == manifests - {"secrets.yaml"}, set(listed) ^ (manifests - {"secrets.yaml"})
    assert kustomization["namespace"] == "healthpay"
    for _, doc in _k8s_objects():
        assert doc["metadata"].get("namespace", "healthpay") == "healthpay", doc["metadata"]
    # k8s/monitoring holds Prometheus and Grafana files, not Kubernetes objects: nothing to list
    for path in MONITORING.rglob("*.yml"):
        assert not {"apiVersion", "kind"} <= set(_yaml(path) or {}), path
