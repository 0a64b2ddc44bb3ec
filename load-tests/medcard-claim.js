// k6 scenario for the claim path (seed 001: "k6 run load-tests/medcard-claim.js",
// target 10,000 TPS with p95 < 50 ms). `make k6` runs it against make up's stack.
//
//   ADMIN_TOKEN=$(healthpay token --role admin) \
//   TOKEN=$(healthpay token --role pharmacy --sub ph-1 --pharmacy-id ph-1) \
//   k6 run load-tests/medcard-claim.js
//
// Environment:
//   BASE_URL     the edge or a command service (default http://127.0.0.1:3000: make up's edge)
//   TOKEN        pharmacy bearer token for the claims (required)
//   ADMIN_TOKEN  admin bearer token; setup() creates CARDS cards with it (default: TOKEN)
//   CARD_IDS     optional comma-separated card ids to use instead of creating cards
//   CARDS_FILE   optional file of card ids, one a line (for more ids than an env var holds)
//   CARDS        cards to create (default 200); claims spread over them at random
//   RATE         claims per second (constant arrival rate; e.g. 10000 for the seed's target).
//                Unset: VUS virtual users claim back to back (closed loop).
//   VUS          virtual users (default 64); MAX_VUS for the arrival-rate mode (default 4*VUS)
//   DURATION     default 60s
//
// Thresholds (exit code 99 when crossed): claim p95 < 50 ms, < 0.1 % failed claims, and every
// claim answered 201 with a decision. Each prescription id is unique (run id + VU + iteration),
// so this measures real adjudication, not the replay of an earlier claim. `claims_2xx` counts
// the claims answered 2xx (make bench-pipeline holds the event store to it); the first refused
// claim of each VU is logged with its status and body.

import http from 'k6/http';
import { check, fail } from 'k6';
import { Counter } from 'k6/metrics';

const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:3000').replace(/\/+$/, '');
const TOKEN = __ENV.TOKEN || '';
const ADMIN_TOKEN = __ENV.ADMIN_TOKEN || TOKEN;
const CARDS = parseInt(__ENV.CARDS || '200', 10);
const RATE = parseInt(__ENV.RATE || '0', 10);
const VUS = parseInt(__ENV.VUS || '64', 10);
const MAX_VUS = parseInt(__ENV.MAX_VUS || String(4 * VUS), 10);
const DURATION = __ENV.DURATION || '60s';
// open() works only here, in the init context
const CARDS_FILE = __ENV.CARDS_FILE ? open(__ENV.CARDS_FILE) : '';

const claims2xx = new Counter('claims_2xx');
const claimsNon201 = new Counter('claims_non_201');
let refusalLogged = false;

export const options = {
  scenarios: {
    claims:
      RATE > 0
        ? {
            executor: 'constant-arrival-rate',
            rate: RATE,
            timeUnit: '1s',
            duration: DURATION,
            preAllocatedVUs: VUS,
            maxVUs: MAX_VUS,
          }
        : { executor: 'constant-vus', vus: VUS, duration: DURATION },
  },
  // Only the claims count: card creation in setup() is not what the target is about.
  thresholds: {
    'http_req_duration{name:claim}': ['p(95)<50'],
    'http_req_failed{name:claim}': ['rate<0.001'],
    'checks{name:claim}': ['rate>0.999'],
  },
  summaryTrendStats: ['avg', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
};

function headers(token) {
  return { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
}

export function setup() {
  if (!TOKEN) fail('set TOKEN to a pharmacy bearer token');
  const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const given = __ENV.CARD_IDS ? __ENV.CARD_IDS.split(',') : CARDS_FILE.split('\n');
  const ids = given.map((s) => s.trim()).filter((s) => s);
  if (ids.length > 0) return { run, cards: ids };
  const cards = [];
  for (let start = 0; start < CARDS; start += 50) {
    const batch = [];
    for (let i = start; i < Math.min(start + 50, CARDS); i++) {
      batch.push({
        method: 'POST',
        url: `${BASE_URL}/api/v1/medcards`,
        body: JSON.stringify({ userId: `u-k6-${run}-${i}`, cardType: 'gold', monthlyLimit: 100000000 }),
        params: { headers: headers(ADMIN_TOKEN), tags: { name: 'create_card' } },
      });
    }
    for (const res of http.batch(batch)) {
      if (res.status !== 201) fail(`creating a card answered ${res.status}: ${res.body}`);
      cards.push(res.json('id'));
    }
  }
  return { run, cards };
}

export default function (data) {
  const card = data.cards[Math.floor(Math.random() * data.cards.length)];
  const cents = 1000 + Math.floor(Math.random() * 49001); // 10.00 .. 500.00 EGP
  const res = http.post(
    `${BASE_URL}/api/v1/medcards/${card}/claims/prescriptions`,
    JSON.stringify({
      prescriptionId: `rx-k6-${data.run}-${__VU}-${__ITER}`,
      totalAmount: cents / 100,
    }),
    { headers: headers(TOKEN), tags: { name: 'claim' } },
  );
  if (res.status >= 200 && res.status < 300) claims2xx.add(1);
  if (res.status !== 201) {
    claimsNon201.add(1, { status: String(res.status) });
    if (!refusalLogged) {
      refusalLogged = true;
      console.warn(`claim answered ${res.status}: ${String(res.body).slice(0, 300)}`);
    }
  }
  check(
    res,
    {
      'claim answered 201': (r) => r.status === 201,
      'claim has a decision': (r) => r.status === 201 && r.json('decision') !== undefined,
    },
    { name: 'claim' },
  );
}
