#!/usr/bin/env bash
# The seed's end-to-end flow (docs/product-spec.md, "Verification"; README "Try it") against
# the stack `make up` runs: health, a gold card, a claim on it, the events in PostgreSQL, the
# projected claim, the member's GraphQL read of their own write, then each other write once
# (beneficiary, reversal, lifecycle, wallet). Prints each check; exits
# non-zero at the first that fails. The token comes from `healthpay token`, as in README.
#
#   scripts/smoke.sh        BASE_URL (http://127.0.0.1:$PORT, PORT 3000), POSTGRES_URL (make up's)
set -euo pipefail
cd "$(dirname "$0")/.."
BASE_URL=${BASE_URL:-http://127.0.0.1:${PORT:-3000}}
POSTGRES_URL=${POSTGRES_URL:-postgresql://healthpay@127.0.0.1:${PG_PORT:-25432}/healthpay_ledger}
PSQL=$(scripts/need.sh curl psql:postgresql-client | tail -n 1)
PY=.venv/bin/python
WAIT=${SMOKE_WAIT:-30}  # seconds a projection may take
passed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

ok() {
  passed=$((passed + 1))
  echo "smoke: ok    $*"
}

fail() {
  echo "smoke: FAIL  $*" >&2
  [[ -s $out ]] && echo "smoke:       last answer: $(head -c 600 "$out")" >&2
  exit 1
}

# call METHOD PATH [BODY] [TOKEN]: the answer's body in $out, its status in $status
call() {
  local args=(-sS -o "$out" -w '%{http_code}' -X "$1" "$BASE_URL$2" -H "Content-Type: application/json")
  [[ -n ${3:-} ]] && args+=(-d "$3")
  [[ -n ${4:-} ]] && args+=(-H "Authorization: Bearer $4")
  status=$(curl "${args[@]}") || fail "$1 $2: no answer from $BASE_URL"
}

# field KEY...: a value of the JSON in $out (keys and list indices); empty when absent
field() {
  "$PY" - "$out" "$@" <<'PY'
import json, sys
value = json.load(open(sys.argv[1]))
for key in sys.argv[2:]:
    try:
        value = value[int(key)] if isinstance(value, list) else value[key]
    except (KeyError, IndexError, TypeError, ValueError):
        sys.exit(0)
print(value if not isinstance(value, (dict, list)) else json.dumps(value, sort_keys=True))
PY
}

expect() {  # what, actual, wanted
  [[ $2 == "$3" ]] || fail "$1: got '$2', want '$3'"
  ok "$1 = $3"
}

done2xx() {  # what: the last call was carried out (200 or 201, as the write answers)
  [[ $status == 200 || $status == 201 ]] || fail "$1: got status $status"
  ok "$1 = $status"
}

sql() {
  "$PSQL" "$POSTGRES_URL" -X -q -tA -v ON_ERROR_STOP=1 -c "$1" || fail "psql: $1"
}

# --------------------------------------------------------------------------- health
seed_health='{"services": {"kafka": "up", "postgres": "up", "scylla": "up"}, "status": "healthy", "version": "2.0.0"}'
for _ in $(seq 1 "$WAIT"); do
  call GET /health
  [[ $status == 200 ]] && break
  sleep 1
done
expect "GET /health status" "$status" 200
expect "GET /health body (the seed's, nothing more)" "$(field)" "$seed_health"
call GET /health/live
expect "GET /health/live status" "$status" 200
call GET /health/ready
expect "GET /health/ready status" "$status" 200

# ------------------------------------------------------------ the seed's write flow
TOKEN=$(.venv/bin/healthpay token --role admin)
call POST /api/v1/medcards '{"userId": "test-user-1", "cardType": "gold", "monthlyLimit": 5000}' "$TOKEN"
expect "POST /api/v1/medcards status" "$status" 201
card=$(field id)
[[ $card =~ ^[0-9a-f-]{36}$ ]] || fail "the new card has no id"
ok "card $card issued"

rx="rx-test-1"
call POST "/api/v1/medcards/$card/claims/prescriptions" "{\"prescriptionId\": \"$rx\", \"totalAmount\": 350.00}" "$TOKEN"
expect "POST .../claims/prescriptions status" "$status" 201
expect "decision" "$(field decision)" approved
expect "coveredAmount" "$(field coveredAmount)" 315.00
expect "copaymentAmount" "$(field copaymentAmount)" 35.00
expect "remainingMonthlyLimit" "$(field remainingMonthlyLimit)" 4685.00
position=$(field position)
[[ $position =~ ^[0-9]+$ ]] || fail "the claim's answer has no position"
ok "claim at position $position"

expect "events of the card (event store)" \
  "$(sql "SELECT string_agg(event_type, ',' ORDER BY version) FROM events WHERE aggregate_id = '$card'")" \
  "medcard.issued,medcard.claim_adjudicated"

# ------------------------------------------------------------------ the read side
projected=""
for _ in $(seq 1 $((WAIT * 5))); do
  projected=$(sql "SELECT prescription_id || ' ' || covered_amount || ' ' || copayment_amount
                   FROM prescription_claims WHERE medcard_id = '$card'")
  [[ -n $projected ]] && break
  sleep 0.2
done
expect "prescription_claims row (relay -> Kafka -> projection)" "$projected" "$rx 315.00 35.00"

MEMBER=$(.venv/bin/healthpay token --role member --sub test-user-1)
query='query($id: ID!, $p: Long) { medcard(id: $id, minPosition: $p) {
  currentMonthSpent remainingThisMonth projectionPosition
  claims(first: 10) { edges { node { prescriptionId coveredAmount } } } } }'
body=$("$PY" -c 'import json, sys; print(json.dumps({"query": sys.argv[1], "variables": {"id": sys.argv[2], "p": int(sys.argv[3])}}))' \
  "$query" "$card" "$position")
call POST /graphql "$body" "$MEMBER"
expect "POST /graphql status (member, own card)" "$status" 200
expect "GraphQL errors" "$(field errors)" ""
expect "GraphQL currentMonthSpent" "$(field data medcard currentMonthSpent)" 315.00
expect "GraphQL remainingThisMonth" "$(field data medcard remainingThisMonth)" 4685.00
expect "GraphQL claim" "$(field data medcard claims edges 0 node prescriptionId)" "$rx"
expect "GraphQL claim coveredAmount" "$(field data medcard claims edges 0 node coveredAmount)" 315.00

call GET "/api/v1/medcards/$card?minPosition=$position" "" "$MEMBER"
expect "GET /api/v1/medcards/{id}?minPosition status (REST read)" "$status" 200

# ------------------------------------- the rest of the write API, once each (so that every
# panel of the dashboards has traffic: scripts/tools/dashboards_check.py --require-all); the
# values that must be unique are this run's, so the smoke runs again on the same stack
run=$(printf '%04d' $((10#$(date +%N) % 10000)))
call POST "/api/v1/medcards/$card/beneficiaries" "{\"relationship\": \"spouse\", \"name\": \"Mona Ali\",
  \"nationalId\": \"290011501${run}3\", \"dateOfBirth\": \"1990-01-15\", \"phoneNumber\": \"01012345678\"}" "$TOKEN"
done2xx "POST .../beneficiaries status"
beneficiary=$(field id)
call DELETE "/api/v1/medcards/$card/beneficiaries/$beneficiary" "" "$TOKEN"
done2xx "DELETE .../beneficiaries/{id} status"
call POST "/api/v1/medcards/$card/claims/prescriptions" '{"prescriptionId": "rx-test-2", "totalAmount": "1E+2"}' "$TOKEN"
expect "a claim with an amount spelt 1E+2: status" "$status" 422
expect "... its problem names the field" "$(field errors 0 field)" totalAmount
call POST "/api/v1/medcards/$card/claims/prescriptions" '{"prescriptionId": "rx-test-2", "totalAmount": 50.00}' "$TOKEN"
done2xx "second claim status"
claim=$(field claimId)
call POST "/api/v1/medcards/$card/claims/$claim/reversal" '{"reason": "returned"}' "$TOKEN"
done2xx "POST .../claims/{id}/reversal status"
expect "reversal restores the month" "$(field remainingMonthlyLimit)" 4685.00
call POST "/api/v1/medcards/$card/suspend" '{"reason": "smoke"}' "$TOKEN"
done2xx "POST .../suspend status"
call POST "/api/v1/medcards/$card/reactivate" '{}' "$TOKEN"
done2xx "POST .../reactivate status"
call POST /api/v1/wallets "{\"userId\": \"smoke-user-$run-$$\"}" "$TOKEN"
done2xx "POST /api/v1/wallets status"
wallet=$(field id)
call POST "/api/v1/wallets/$wallet/topups" "{\"gateway\": \"fawry\", \"gatewayReference\": \"smoke-$run-$$\", \"amount\": \"100.00\"}" "$TOKEN"
done2xx "POST .../topups status"
call POST "/api/v1/wallets/$wallet/debits" '{"amount": "20.00", "reference": "smoke-order-1"}' "$TOKEN"
done2xx "POST .../debits status"
expect "wallet balance after the debit" "$(field balance)" 80.00
debit=$(field transactionId)
call POST "/api/v1/wallets/$wallet/debits/$debit/refund" '{"amount": "5.00", "reason": "smoke"}' "$TOKEN"
done2xx "POST .../debits/{id}/refund status"
expect "wallet balance after the refund" "$(field balance)" 85.00
call POST "/api/v1/medcards/$card/holds" '{"amount": "40.00", "prescriptionId": "rx-test-hold"}' "$TOKEN"
done2xx "POST .../holds status"
hold=$(field holdId)
call POST "/api/v1/medcards/$card/holds/$hold/void" '{"reason": "smoke"}' "$TOKEN"
done2xx "POST .../holds/{id}/void status"
call POST "/api/v1/medcards/$card/refill-overrides" '{"drugCode": "D-SMOKE", "reason": "smoke"}' "$TOKEN"
done2xx "POST .../refill-overrides status"

echo "smoke: all $passed checks passed against $BASE_URL"
