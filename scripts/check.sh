#!/usr/bin/env bash
# Static checks: formatting, lint, types, import rules between packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(domain schemas infrastructure command_service projection_service api_gateway cli tests load-tests)
.venv/bin/ruff format --check "${PKGS[@]}"
.venv/bin/ruff check "${PKGS[@]}"
.venv/bin/mypy domain schemas infrastructure command_service projection_service api_gateway cli tests
.venv/bin/mypy load-tests/bench.py load-tests/bare_apps.py load-tests/stream_bench.py load-tests/bench_common.py load-tests/read_bench.py load-tests/memory_bench.py load-tests/pipeline_bench.py load-tests/kafka_bench.py load-tests/relay_encode_bench.py load-tests/upcast_bench.py load-tests/balance_bench.py load-tests/asgi_claim_bench.py load-tests/log_bench.py
.venv/bin/lint-imports
