"""Locust scenario for the claim path: each simulated pharmacy creates a card, then claims.

Run it as its own process (never import locust from the app or the tests: it monkey-patches
the standard library with gevent):

    export BASE_URL=http://127.0.0.1:8000
    export ADMIN_TOKEN=$(healthpay token --role admin)
    export TOKEN=$(healthpay token --role pharmacy --sub ph-1 --pharmacy-id ph-1)
    locust -f load-tests/locustfile.py --headless -u 64 -r 16 -t 60s

Environment:
    BASE_URL      the command service or the edge in front of it (also: --host)
    TOKEN         pharmacy bearer token for the claims
    ADMIN_TOKEN   admin bearer token to create each user's card (default: TOKEN)
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

BASE_URL = os.environ.get("BASE_URL", "http://127.0.0.1:8000").rstrip("/")
TOKEN = os.environ.get("TOKEN", "")
ADMIN_TOKEN = os.environ.get("ADMIN_TOKEN", "") or TOKEN
CLAIM_NAME = "/api/v1/medcards/[id]/claims/prescriptions"


def _cards_from_file() -> list[str]:
    path = os.environ.get("CARDS_FILE", "")
    if not path:
        return []
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]


PRECREATED_CARDS = _cards_from_file()


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


class PharmacyClaims(HttpUser):
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


def _json(resp: Any) -> dict[str, Any]:
    try:
        doc = resp.json()
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}
