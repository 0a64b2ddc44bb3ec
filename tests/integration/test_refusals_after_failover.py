"""A process whose cache is behind never refuses a command for it (found by `make chaos`).

The process that issues a card caches it; when the card's writes later reach it again (the
process that owns the card failed and the edge sent them elsewhere), its cached card lacks
what the other process wrote since. A write would clash on the version and be decided again,
but a refusal writes nothing: it must be decided again on the store's state, not answered
from the cache.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integration.command_processes import CommandProcess
from tests.integration.stream_load import Callers

pytestmark = pytest.mark.integration
SECRET = "failover-secret-0123456789abcdef0123456789"
API = "/api/v1"


@pytest.fixture
def two_processes(postgres_url: str) -> Iterator[list[CommandProcess]]:
    processes = [CommandProcess(postgres_url, SECRET).start() for _ in range(2)]
    yield processes
    for process in processes:
        process.stop()


def test_a_claim_written_elsewhere_is_reversed_not_refused(
    two_processes: list[CommandProcess],
) -> None:
    callers = Callers.make(SECRET)
    issuer, owner = (httpx.Client(base_url=p.url, timeout=30) for p in two_processes)
    with issuer, owner:
        card = issuer.post(
            API + "/medcards",
            json={"userId": "u-failover", "cardType": "gold", "monthlyLimit": "5000.00"},
            headers=callers.admin,
        )
        assert card.status_code == 201, card.text
        card_id = card.json()["id"]
        claimed = owner.post(
            f"{API}/medcards/{card_id}/claims/prescriptions",
            json={"prescriptionId": "rx-failover", "totalAmount": "100.00"},
            headers=callers.pharmacies[0],
        )
        assert claimed.status_code == 201, claimed.text
        claim_id = claimed.json()["claimId"]

        reversed_ = issuer.post(
            f"{API}/medcards/{card_id}/claims/{claim_id}/reversal",
            json={"reason": "failover"},
            headers=callers.admin,
        )
        assert reversed_.status_code == 200, reversed_.text
        assert reversed_.json()["version"] == 3
        # ...and a refusal that the store agrees with is still a refusal
        again = issuer.post(
            f"{API}/medcards/{card_id}/claims/{claim_id}/reversal",
            json={"reason": "failover"},
            headers=callers.admin,
        )
        assert again.status_code == 409, again.text
        assert again.json()["code"] == "claim_already_reversed"


def test_a_copay_debited_elsewhere_is_refunded_not_refused(
    two_processes: list[CommandProcess],
) -> None:
    """Both the card and the wallet are behind in the process that reverses: the card lacks
    the claim, the wallet the debit the claim made from it."""
    callers = Callers.make(SECRET)
    issuer, owner = (httpx.Client(base_url=p.url, timeout=30) for p in two_processes)
    with issuer, owner:
        card = issuer.post(
            API + "/medcards",
            json={"userId": "u-copay", "cardType": "silver", "monthlyLimit": "5000.00"},
            headers=callers.admin,
        )
        assert card.status_code == 201, card.text
        card_id = card.json()["id"]
        wallet = issuer.post(API + "/wallets", json={"userId": "u-copay"}, headers=callers.ops)
        assert wallet.status_code == 201, wallet.text
        wallet_id = wallet.json()["id"]
        topped = issuer.post(
            f"{API}/wallets/{wallet_id}/topups",
            json={"gateway": "fawry", "gatewayReference": "gw-copay", "amount": "100.00"},
            headers=callers.ops,
        )
        assert topped.status_code == 201, topped.text
        consent = issuer.put(
            f"{API}/wallets/{wallet_id}/copay-consent",
            json={"perClaimLimit": "60.00", "monthlyLimit": "400.00"},
            headers=callers.admin,
        )
        assert consent.status_code == 200, consent.text
        claimed = owner.post(
            f"{API}/medcards/{card_id}/claims/prescriptions",
            json={
                "prescriptionId": "rx-copay",
                "totalAmount": "100.00",
                "payCopaymentFromWallet": True,
            },
            headers=callers.pharmacies[0],
        )
        assert claimed.status_code == 201, claimed.text
        paid = claimed.json()["copaymentPaidFromWallet"]
        assert paid != "0.00", claimed.text

        reversed_ = issuer.post(
            f"{API}/medcards/{card_id}/claims/{claimed.json()['claimId']}/reversal",
            json={"reason": "failover"},
            headers=callers.admin,
        )
        assert reversed_.status_code == 200, reversed_.text
        assert reversed_.json()["walletRefund"] == paid
