"""Every write endpoint of the command API, with a valid request and what may vary in it.

Paths name the ids they need as {card}, {beneficiary}, {claim}, {wallet}, {debit}; `World.ids()`
fills them. Each valid body passes validation and `actor` may send it, so a refusal seen in
a test comes from the one thing the test broke.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

from tests.api.gateways import PAYMOB_SAMPLE
from tests.api.support import API, beneficiary_body

# Path placeholder -> (path parameter name in the route table, problem code when missing).
PATH_IDS: dict[str, tuple[str, str]] = {
    "card": ("card_id", "card_not_found"),
    "beneficiary": ("beneficiary_id", "beneficiary_not_found"),
    "claim": ("claim_id", "claim_not_found"),
    "wallet": ("wallet_id", "wallet_not_found"),
    "debit": ("debit_id", "debit_not_found"),
    "hold": ("hold_id", "hold_not_found"),
}

MISSING = object()  # marks a field to delete in `with_field`


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    method: str
    path: str  # relative to /api/v1, with {card}-style placeholders
    body: dict[str, Any] | None  # a valid body; None: the endpoint takes no body
    body_optional: bool = False
    required: tuple[str, ...] = ()  # dotted paths: "items.0.quantity"
    amounts: tuple[str, ...] = ()
    wrong_types: tuple[tuple[str, Any], ...] = ()
    actor: str = "admin"
    forbidden_roles: tuple[str, ...] = ()  # roles refused whatever the object
    member_allowed: bool = False  # a member may call it on their own card or wallet
    # "signature": a payment gateway's callback, authenticated by the gateway's signature and
    # not by a bearer token (which it ignores); its valid body carries no valid signature
    auth: Literal["bearer", "signature"] = "bearer"
    # fields besides the documented ones are ignored (a gateway's body), not refused
    open_body: bool = False

    def url(self, ids: dict[str, str]) -> str:
        return API + self.path.format(**ids)

    @property
    def route(self) -> str:
        """The route template as the app declares it ({card_id} etc.)."""
        path = self.path
        for placeholder, (param, _) in PATH_IDS.items():
            path = path.replace("{" + placeholder + "}", "{" + param + "}")
        return API + path

    def ids_in_path(self) -> list[str]:
        return [p for p in PATH_IDS if "{" + p + "}" in self.path]


def with_field(body: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A deep copy of `body` with `dotted` set to `value` (or removed, for MISSING)."""
    changed = copy.deepcopy(body)
    *parents, last = dotted.split(".")
    target: Any = changed
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value is MISSING:
        del target[last]
    else:
        target[last] = value
    return changed


_LIFECYCLE_WRONG_TYPES: tuple[tuple[str, Any], ...] = (("reason", 5), ("reason", ["x"]))


def _lifecycle(action: str, *, member_allowed: bool = False) -> Endpoint:
    return Endpoint(
        name=f"{action}_card",
        method="POST",
        path=f"/medcards/{{card}}/{action}",
        body={"reason": "api test"},
        body_optional=True,
        wrong_types=_LIFECYCLE_WRONG_TYPES,
        forbidden_roles=("pharmacy",) if member_allowed else ("pharmacy", "member"),
        member_allowed=member_allowed,
    )


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        name="issue_card",
        method="POST",
        path="/medcards",
        body={"userId": "member-new", "cardType": "gold", "monthlyLimit": "5000.00"},
        required=("userId", "cardType"),
        amounts=("monthlyLimit",),
        wrong_types=(
            ("userId", 123),
            ("cardType", None),
            ("monthlyLimit", True),
            ("monthlyLimit", "lots"),
            ("copaymentPercentage", "ten"),
            ("primaryHolder", "someone"),
        ),
        forbidden_roles=("pharmacy", "member"),
    ),
    _lifecycle("activate"),
    _lifecycle("suspend", member_allowed=True),
    _lifecycle("reactivate"),
    _lifecycle("cancel"),
    _lifecycle("renew"),
    _lifecycle("expire"),
    Endpoint(
        name="add_beneficiary",
        method="POST",
        path="/medcards/{card}/beneficiaries",
        body=beneficiary_body(serial="0099", name="Omar Ali"),
        required=("relationship", "nationalId", "name", "dateOfBirth", "phoneNumber"),
        wrong_types=(
            ("nationalId", 29001150100993),
            ("name", ["Omar"]),
            ("dateOfBirth", "15/01/1990"),
            ("phoneNumber", 1012345678),
        ),
        forbidden_roles=("pharmacy",),
        member_allowed=True,
    ),
    Endpoint(
        name="remove_beneficiary",
        method="DELETE",
        path="/medcards/{card}/beneficiaries/{beneficiary}",
        body=None,
        forbidden_roles=("pharmacy",),
        member_allowed=True,
    ),
    Endpoint(
        name="claim_prescription",
        method="POST",
        path="/medcards/{card}/claims/prescriptions",
        body={
            "prescriptionId": "rx-bad-input",
            "totalAmount": "20.00",
            "items": [
                {"drugCode": "D-1", "drugName": "Panadol", "quantity": 2, "unitPrice": "10.00"}
            ],
        },
        required=(
            "prescriptionId",
            "totalAmount",
            "items.0.drugCode",
            "items.0.drugName",
            "items.0.quantity",
            "items.0.unitPrice",
        ),
        amounts=("totalAmount", "items.0.unitPrice"),
        wrong_types=(
            ("items.0.quantity", "2"),
            ("items.0.quantity", 2.5),
            ("items.0.quantity", True),
            ("totalAmount", True),
            ("totalAmount", "twenty"),
            ("items.0.unitPrice", False),
            ("payCopaymentFromWallet", "true"),
            ("payCopaymentFromWallet", 1),
            ("beneficiaryId", "not-a-uuid"),
            ("items", {"drugCode": "D-1"}),
            ("prescriptionId", 42),
            ("items.0.daysSupply", 0),
            ("items.0.daysSupply", 366),
            ("items.0.daysSupply", "30"),
            ("items.0.daysSupply", 7.5),
        ),
        actor="pharmacy",
        forbidden_roles=("ops", "member"),
    ),
    Endpoint(
        name="claim_by_card_number",
        method="POST",
        path="/claims/prescriptions",
        # No card has this number in the world: every case here is refused before the look-up
        # (a body, a token, a role), and a valid body's claim would be 404 card_not_found.
        body={
            "cardNumber": "6048000000000001",
            "prescriptionId": "rx-bad-input",
            "totalAmount": "20.00",
            "beneficiaryNationalId": "29001150100123",
            "items": [
                {"drugCode": "D-1", "drugName": "Panadol", "quantity": 2, "unitPrice": "10.00"}
            ],
        },
        required=("cardNumber", "prescriptionId", "totalAmount", "items.0.quantity"),
        amounts=("totalAmount", "items.0.unitPrice"),
        wrong_types=(
            ("cardNumber", 6048000000000001),
            ("cardNumber", "6048-0000-0000-0001"),
            ("cardNumber", "604800000000000"),
            ("cardNumber", "\u0666048000000000001"),
            ("beneficiaryNationalId", 29001150100123),
            ("mode", "booking"),
            ("mode", True),
            ("totalAmount", "twenty"),
        ),
        actor="pharmacy",
        forbidden_roles=("ops", "member"),
    ),
    Endpoint(
        name="check_eligibility",
        method="POST",
        path="/eligibility",
        body={"cardNumber": "6048000000000001", "beneficiaryNationalId": "29001150100123"},
        required=("cardNumber",),
        wrong_types=(
            ("cardNumber", 6048000000000001),
            ("cardNumber", "6048 0000 0000 0001"),
            ("beneficiaryId", "not-a-uuid"),
            ("beneficiaryNationalId", ["29001150100123"]),
        ),
        actor="pharmacy",
        forbidden_roles=("member",),
    ),
    Endpoint(
        name="reverse_claim",
        method="POST",
        path="/medcards/{card}/claims/{claim}/reversal",
        body={"reason": "api test"},
        body_optional=True,
        wrong_types=(("reason", 5), ("reason", {"text": "x"})),
        actor="admin",
        forbidden_roles=("member",),
    ),
    Endpoint(
        name="grant_refill_override",
        method="POST",
        path="/medcards/{card}/refill-overrides",
        body={"drugCode": "D-1", "reason": "api test", "validUntil": "2099-01-31"},
        required=("drugCode", "reason"),
        wrong_types=(
            ("drugCode", 1),
            ("drugCode", ""),
            ("reason", ["lost"]),
            ("validUntil", "31/01/2099"),
            ("validUntil", "2099-01-31T00:00:00Z"),
            ("beneficiaryId", "not-a-uuid"),
        ),
        actor="ops",
        forbidden_roles=("pharmacy", "member"),
    ),
    Endpoint(
        name="place_hold",
        method="POST",
        path="/medcards/{card}/holds",
        body={"amount": "10.00", "prescriptionId": "rx-bad-input", "expiresInHours": 24},
        required=("amount", "prescriptionId"),
        amounts=("amount",),
        wrong_types=(
            ("amount", True),
            ("amount", "ten"),
            ("prescriptionId", 42),
            ("beneficiaryId", "not-a-uuid"),
            ("expiresInHours", "24"),
            ("expiresInHours", 2.5),
            ("expiresInHours", 0),
            ("expiresInHours", 721),
        ),
        actor="pharmacy",
        forbidden_roles=("ops", "member"),
    ),
    Endpoint(
        name="place_hold_by_number",
        method="POST",
        path="/holds",
        # No card has this number in the world (as claim_by_card_number's)
        body={"cardNumber": "6048000000000001", "amount": "10.00", "prescriptionId": "rx-bad"},
        required=("cardNumber", "amount", "prescriptionId"),
        amounts=("amount",),
        wrong_types=(
            ("cardNumber", 6048000000000001),
            ("cardNumber", "604800000000000"),
            ("beneficiaryNationalId", 29001150100123),
            ("expiresInHours", True),
        ),
        actor="pharmacy",
        forbidden_roles=("ops", "member"),
    ),
    Endpoint(
        name="void_hold",
        method="POST",
        path="/medcards/{card}/holds/{hold}/void",
        body={"reason": "api test"},
        body_optional=True,
        wrong_types=(("reason", 5), ("reason", ["x"])),
        actor="admin",
        forbidden_roles=("member",),
    ),
    Endpoint(
        name="open_wallet",
        method="POST",
        path="/wallets",
        body={"userId": "member-new"},
        required=("userId",),
        wrong_types=(("userId", 42), ("userId", None)),
        actor="ops",
        forbidden_roles=("pharmacy",),
    ),
    Endpoint(
        name="top_up",
        method="POST",
        path="/wallets/{wallet}/topups",
        body={"gateway": "fawry", "gatewayReference": "fawry-bad-input", "amount": "10.00"},
        required=("gateway", "gatewayReference", "amount"),
        amounts=("amount",),
        wrong_types=(("amount", True), ("amount", "ten"), ("gatewayReference", 7)),
        actor="ops",
        forbidden_roles=("pharmacy", "member"),
    ),
    Endpoint(
        name="debit",
        method="POST",
        path="/wallets/{wallet}/debits",
        body={"amount": "1.00", "reference": "order-bad-input"},
        required=("amount", "reference"),
        amounts=("amount",),
        wrong_types=(("amount", True), ("amount", "one"), ("reference", 5)),
        actor="admin",
        forbidden_roles=("pharmacy",),
        member_allowed=True,
    ),
    Endpoint(
        name="refund_debit",
        method="POST",
        path="/wallets/{wallet}/debits/{debit}/refund",
        body={"amount": "1.00", "reason": "api test"},
        required=("reason",),
        amounts=("amount",),
        wrong_types=(("amount", True), ("amount", "one"), ("reason", 5), ("reason", None)),
        actor="ops",
        # staff only: the member who may debit may not refund (wallet_commands.REFUNDERS)
        forbidden_roles=("pharmacy", "member"),
    ),
    Endpoint(
        name="set_copay_consent",
        method="PUT",
        path="/wallets/{wallet}/copay-consent",
        body={"perClaimLimit": "50.00", "monthlyLimit": "200.00"},
        required=("perClaimLimit", "monthlyLimit"),
        wrong_types=(
            ("perClaimLimit", True),
            ("perClaimLimit", None),
            ("monthlyLimit", "lots"),
            ("monthlyLimit", [200]),
        ),
        actor="admin",
        # the member's own act (or admin's): not even ops may open a wallet to pharmacies
        forbidden_roles=("pharmacy", "ops"),
        member_allowed=True,
    ),
]

# The payment gateways' callbacks: only the fields read, so that every string in the body is
# one the service checks (the bad-input matrix puts control characters in each of them).
_FAWRY_BODY: dict[str, Any] = {
    "fawryRefNumber": "970177",
    "merchantRefNumber": "9e1b4f3a-6f1e-4f59-9d51-1f1f2f3f4f5f:bad-input",
    "paymentAmount": 152.5,
    "orderAmount": 150,
    "orderStatus": "PAID",
    "paymentMethod": "PAYATFAWRY",
    "paymentRefrenceNumber": "24480",
    "messageSignature": "0" * 64,
}
_PAYMOB_BODY: dict[str, Any] = {
    "type": "TRANSACTION",
    "obj": {
        **PAYMOB_SAMPLE,
        "amount_cents": 25050,
        "created_at": "2026-12-04T11:33:44.592345",
        "order": {"id": 217503754, "merchant_order_id": "bad-input"},
    },
}
ENDPOINTS += [
    Endpoint(
        name="fawry_callback",
        method="POST",
        path="/payments/fawry/callback",
        body=_FAWRY_BODY,
        required=("fawryRefNumber", "merchantRefNumber", "orderAmount", "messageSignature"),
        wrong_types=(
            ("fawryRefNumber", 970177),
            ("orderAmount", "lots"),
            ("orderAmount", True),
            ("paymentAmount", -1),
            ("orderAmount", "150.005"),
            ("orderStatus", None),
        ),
        auth="signature",
        open_body=True,
    ),
    Endpoint(
        name="paymob_callback",
        method="POST",
        path="/payments/paymob/callback",
        body=_PAYMOB_BODY,
        required=("type", "obj", "obj.amount_cents", "obj.id", "obj.success", "obj.order.id"),
        wrong_types=(
            ("type", "TOKEN"),
            ("obj.success", "true"),
            ("obj.pending", 0),
            ("obj.amount_cents", "25050"),
            ("obj.amount_cents", 250.5),
            ("obj.id", -1),
            ("obj.order", 217503754),
        ),
        auth="signature",
        open_body=True,
    ),
]

BEARER = [e for e in ENDPOINTS if e.auth == "bearer"]
SIGNED = [e for e in ENDPOINTS if e.auth == "signature"]
BY_NAME = {endpoint.name: endpoint for endpoint in ENDPOINTS}
WITH_BODY = [e for e in ENDPOINTS if e.body is not None]
WITH_REQUIRED_BODY = [e for e in WITH_BODY if not e.body_optional]
WITH_PATH_IDS = [e for e in ENDPOINTS if e.ids_in_path()]
