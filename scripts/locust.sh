#!/usr/bin/env bash
# `make locust`: Locust (load-tests/locustfile.py) against the stack `make up` started, headless:
# pharmacies posting claims and members reading their cards. Installs Locust on first use
# (the `load` extra; never imported by the app or the tests).
#   USERS (32), SPAWN_RATE (8), DURATION (30s), PORT (3000), BASE_URL; extra args go to locust.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -x .venv/bin/locust ]]; then
  .venv/bin/python -m pip install --quiet -e '.[load]'
fi
BASE_URL=${BASE_URL:-http://127.0.0.1:${PORT:-3000}}
curl -fsS -o /dev/null "$BASE_URL/edge/health" 2>/dev/null || curl -fsS -o /dev/null "$BASE_URL/health" || {
  echo "nothing answers at $BASE_URL: run 'make up' first" >&2
  exit 2
}
export BASE_URL
ADMIN_TOKEN=$(.venv/bin/healthpay token --role admin)
TOKEN=$(.venv/bin/healthpay token --role pharmacy --sub locust-pharmacy --pharmacy-id locust-pharmacy)
MEMBER_TOKEN=$(.venv/bin/healthpay token --role member --sub "${MEMBER_SUB:-locust-member}")
export ADMIN_TOKEN TOKEN MEMBER_TOKEN
exec .venv/bin/locust -f load-tests/locustfile.py --headless --only-summary \
  -u "${USERS:-32}" -r "${SPAWN_RATE:-8}" -t "${DURATION:-30s}" --host "$BASE_URL" "$@"
