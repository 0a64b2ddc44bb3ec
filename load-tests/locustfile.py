"""Locust scenarios: pharmacies posting claims, and members' apps reading their card.

`make locust` runs both against the stack `make up` started (scripts/locust.sh mints the
tokens). Run it as its own process (never import locust from the app or the tests: it
monkey-patches the standard library with gevent):

    export BASE_URL=http://127.0.0.1:3000
    export ADMIN_TOKEN=$(healthpay token --role admin)
    export TOKEN=$(healthpay token --role pharmacy --sub ph-1 --pharmacy-id ph-1)
    export MEMBER_TOKEN=$(healthpay token --role member --sub locust-member)
    locust -f load-tests/locustfile.py --headless -u 64 -r 16 -t 60s

Environment:
    BASE_URL      the edge (one public URL) or a command service (also: --host)
    TOKEN         pharmacy bearer token for the claims
    ADMIN_TOKEN   admin bearer token to create each user's card (default: TOKEN)
    MEMBER_TOKEN  member token of MEMBER_SUB (default locust-member) for the card reads; without
                  it the readers stay idle
    CARDS_FILE    optional: card ids, one a line, to claim against instead of creating cards
    WAIT_MIN/WAIT_MAX  seconds between a user's claims (default 0 and 0.05)

Every prescription id is unique, so the scenario measures real adjudication and appends,
not the idempotent replay of an earlier claim. A claim counts as a failure in Locust's
statistics unless it answers 201 with a decision.
"""

from __future__ import annotations

import os
import random
import uuid
from pathlib import Path
from typing import Any

from locust import HttpUser, between, task
from locust.exception import StopUser

BASE_URL = os.environ.get("BASE_URL", "http://127.0.0.1:3000").rstrip("/")
TOKEN = os.environ.get("TOKEN", "")
ADMIN_TOKEN = os.environ.get("ADMIN_TOKEN", "") or TOKEN
MEMBER_TOKEN = os.environ.get("MEMBER_TOKEN", "")
MEMBER_SUB = os.environ.get("MEMBER_SUB", "locust-member")
CLAIM_NAME = "/api/v1/medcards/[id]/claims/prescriptions"
CARD_QUERY = """query Card($id: ID!, $p: Long) {
  medcard(id: $id, minPosition: $p) {
    id currentMonthSpent remainingThisMonth projectionPosition
    beneficiaries { name }
    claims(first: 10) { edges { node { id decision coveredAmount } } }
  }
}"""


def _cards_from_file() -> list[str]:
    path = os.environ.get("CARDS_FILE", "")
    if not path:
        return []
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]


PRECREATED_CARDS = _cards_from_file()


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


class PharmacyClaims(HttpUser):
    weight = 3
    host = BASE_URL
    wait_time = between(
        float(os.environ.get("WAIT_MIN", "0")), float(os.environ.get("WAIT_MAX", "0.05"))
    )

    card_id: str = ""
    prefix: str = ""
    counter: int = 0

    def on_start(self) -> None:
        if not TOKEN:
            raise RuntimeError("set TOKEN to a pharmacy bearer token (see the module docstring)")
        self.prefix = f"rx-locust-{uuid.uuid4().hex[:12]}"
        if PRECREATED_CARDS:
            self.card_id = random.choice(PRECREATED_CARDS)
            return
        with self.client.post(
            "/api/v1/medcards",
            json={
                "userId": f"u-locust-{uuid.uuid4().hex[:12]}",
                "cardType": "gold",
                "monthlyLimit": 100000000,
            },
            headers=_headers(ADMIN_TOKEN),
            name="/api/v1/medcards",
            catch_response=True,
        ) as resp:
            card = _json(resp).get("id") if resp.status_code == 201 else None
            if not card:
                resp.failure(f"creating a card answered {resp.status_code}: {resp.text[:200]}")
                raise StopUser()  # is ADMIN_TOKEN an admin token?
            self.card_id = str(card)

    @task
    def claim_prescription(self) -> None:
        self.counter += 1
        cents = random.randint(1000, 50000)
        with self.client.post(
            f"/api/v1/medcards/{self.card_id}/claims/prescriptions",
            json={
                "prescriptionId": f"{self.prefix}-{self.counter}",
                "totalAmount": round(cents / 100, 2),
            },
            headers=_headers(TOKEN),
            name=CLAIM_NAME,
            catch_response=True,
        ) as resp:
            if resp.status_code != 201:
                resp.failure(f"{resp.status_code}: {resp.text[:200]}")
            elif "decision" not in _json(resp):
                resp.failure("201 without a decision")
            else:
                resp.success()


class MemberReads(HttpUser):
    """A member's app: its card over GraphQL (the first read waits for its own claim with
    minPosition, as an app would after paying) and over REST."""

    weight = 1
    host = BASE_URL
    wait_time = between(0.05, 0.2)

    card_id: str = ""
    position: int | None = None

    def on_start(self) -> None:
        if not MEMBER_TOKEN:
            raise StopUser()  # no member token: only the claims run
        with self.client.post(
            "/api/v1/medcards",
            json={"userId": MEMBER_SUB, "cardType": "gold"},
            headers=_headers(ADMIN_TOKEN),
            name="/api/v1/medcards",
            catch_response=True,
        ) as resp:
            self.card_id = str(_json(resp).get("id") or "")
            if resp.status_code != 201 or not self.card_id:
                resp.failure(f"creating a card answered {resp.status_code}: {resp.text[:200]}")
                raise StopUser()
        with self.client.post(
            f"/api/v1/medcards/{self.card_id}/claims/prescriptions",
            json={"prescriptionId": f"rx-reader-{uuid.uuid4().hex[:12]}", "totalAmount": 100},
            headers=_headers(TOKEN),
            name=CLAIM_NAME,
            catch_response=True,
        ) as resp:
            position = _json(resp).get("position")
            self.position = position if isinstance(position, int) else None
        self.card_over_graphql()  # waits for the projection: later reads find the card

    @task(3)
    def card_over_graphql(self) -> None:
        variables: dict[str, Any] = {"id": self.card_id, "p": self.position}
        self.position = None  # only the first read needs to wait for the claim
        with self.client.post(
            "/graphql",
            json={"query": CARD_QUERY, "variables": variables},
            headers=_headers(MEMBER_TOKEN),
            name="/graphql medcard",
            catch_response=True,
        ) as resp:
            body = _json(resp)
            card = (body.get("data") or {}).get("medcard")
            if resp.status_code != 200 or body.get("errors") or not card:
                resp.failure(f"{resp.status_code}: {resp.text[:200]}")

    @task(1)
    def card_over_rest(self) -> None:
        with self.client.get(
            f"/api/v1/medcards/{self.card_id}",
            headers=_headers(MEMBER_TOKEN),
            name="/api/v1/medcards/[id]",
            catch_response=True,
        ) as resp:
            if resp.status_code != 200 or _json(resp).get("id") != self.card_id:
                resp.failure(f"{resp.status_code}: {resp.text[:200]}")


def _json(resp: Any) -> dict[str, Any]:
    try:
        doc = resp.json()
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}
