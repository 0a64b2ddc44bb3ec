# Two commands matter: `make up` (start everything) and `make test` (run every check and test).
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help install up down smoke test lint check-k8s-prometheus unit format audit backup bench bench-quick bench-stream bench-reads bench-memory bench-pipeline bench-kafka bench-relay-encode locust k6 fuzz chaos

help:
	@echo "make up     start PostgreSQL, Kafka, Cassandra and every service locally, print the URLs"
	@echo "make down   stop what make up started"
	@echo "make smoke  the seed's end-to-end flow against the running stack (after make up)"
	@echo "make test   lint, types, import rules and every test against real servers"
	@echo "make backup a verified base backup of make up's PostgreSQL into .local/backups (scripts/backup.sh)"
	@echo "make audit  pip-audit: the installed dependencies against the known vulnerabilities"
	@echo "make bench  claim-path benchmark against bare endpoints on this machine"
	@echo "make bench-stream  relay, projector and rebuild events/s on a 100k-event backlog"
	@echo "make bench-reads   GraphQL and REST card reads (p95 at 16 connections) against bare endpoints"
	@echo "make bench-memory  one command-service process's RSS over 1M claims on 10k cards"
	@echo "make bench-kafka  the broker's and clients' CPU per event for Kafka client settings side by side"
	@echo "make bench-pipeline  CPU per claim per process, open-loop latency and lag on a private make up stack"
	@echo "make bench-relay-encode  relay CPU per event: stored JSON passed through vs decoded and re-encoded"
	@echo "make locust  Locust against the running stack (after make up): claims and card reads"
	@echo "make k6     the guide's k6 run load-tests/medcard-claim.js against the running stack (p95 < 50 ms)"
	@echo "make fuzz   Schemathesis (public OpenAPI) and GraphQL fuzz against the real services on private ports"
	@echo "make chaos  crash every piece under load on private servers, then check every store"

install:
	@scripts/bootstrap.sh

up: install
	@scripts/up.sh

down:
	@scripts/down.sh

smoke: install
	@scripts/smoke.sh

lint: install
	@scripts/check.sh

# The cluster's Prometheus config (Kubernetes discovery) through a promtool that knows it;
# built from source on first use (long: scripts/tools.sh promtool-k8s), so not part of CI.
check-k8s-prometheus:
	"$$(scripts/tools.sh promtool-k8s)" check config k8s/monitoring/prometheus.yml

format: install
	.venv/bin/ruff format domain schemas infrastructure command_service projection_service api_gateway cli tests load-tests
	.venv/bin/ruff check --fix domain schemas infrastructure command_service projection_service api_gateway cli tests load-tests

backup:
	@scripts/backup.sh base $(or $(POSTGRES_URL),postgresql://healthpay@127.0.0.1:25432/healthpay_ledger) .local/backups

# Needs the vulnerability service of PyPI (or OSV: PIP_AUDIT_SERVICE=osv) to be reachable.
audit: install
	.venv/bin/pip-audit --strict --skip-editable --progress-spinner off --vulnerability-service $(or $(PIP_AUDIT_SERVICE),pypi)

unit: install
	.venv/bin/pytest tests/unit -q

test: lint
	.venv/bin/pytest -q

bench: install
	@scripts/need.sh wrk nginx >/dev/null
	.venv/bin/python load-tests/bench.py

bench-quick: install
	@scripts/need.sh wrk nginx >/dev/null
	.venv/bin/python load-tests/bench.py --quick

bench-stream: install
	.venv/bin/python load-tests/stream_bench.py

bench-reads: install
	@scripts/need.sh wrk nginx >/dev/null
	.venv/bin/python load-tests/read_bench.py

bench-memory: install
	.venv/bin/python load-tests/memory_bench.py
bench-kafka: install
	.venv/bin/python load-tests/kafka_bench.py

bench-pipeline: install
	@scripts/need.sh k6 >/dev/null
	.venv/bin/python load-tests/pipeline_bench.py
bench-relay-encode: install
	.venv/bin/python load-tests/relay_encode_bench.py

locust: install
	scripts/locust.sh

k6: install
	scripts/k6.sh

fuzz: install
	.venv/bin/python -m tests.fuzz.run

# FAULTS=16 DURATION=150 by default; longer nightly runs: make chaos FAULTS=60 DURATION=900
chaos: install
	.venv/bin/python -m tests.chaos.run --faults $(or $(FAULTS),16) --duration $(or $(DURATION),150)
