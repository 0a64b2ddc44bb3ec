#!/usr/bin/env bash
# `make k6`: the deployment guide's `k6 run load-tests/medcard-claim.js` against the stack
# `make up` started, with the guide's threshold (claim p95 < 50 ms; k6 exits 99 when crossed).
# Installs k6 on first use (scripts/need.sh builds it into .local/bin).
#   PORT (3000), BASE_URL, DURATION (30s), VUS (64), RATE (unset: closed loop; e.g. 500 for a
#   constant arrival rate), CARDS (200); extra args go to k6.
set -euo pipefail
cd "$(dirname "$0")/.."
K6=$(scripts/need.sh k6)
BASE_URL=${BASE_URL:-http://127.0.0.1:${PORT:-3000}}
curl -fsS -o /dev/null "$BASE_URL/edge/health" 2>/dev/null || curl -fsS -o /dev/null "$BASE_URL/health" || {
  echo "nothing answers at $BASE_URL: run 'make up' first" >&2
  exit 2
}
export BASE_URL DURATION=${DURATION:-30s}
ADMIN_TOKEN=$(.venv/bin/healthpay token --role admin)
TOKEN=$(.venv/bin/healthpay token --role pharmacy --sub k6-pharmacy --pharmacy-id k6-pharmacy)
export ADMIN_TOKEN TOKEN
exec "$K6" run "$@" load-tests/medcard-claim.js
