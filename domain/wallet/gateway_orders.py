"""How a payment-gateway order names the wallet it tops up.

We create each Fawry or Paymob order with a merchant reference of our own (Fawry's
`merchantRefNumber`, Paymob's `merchant_order_id`): the wallet id, a colon, and a suffix that
makes the order unique (the gateways refuse a merchant reference used twice), e.g.
`1b4e28ba-2fa1-11d2-883f-0016d3cca427:topup-0007`. The gateway echoes it back in its
callback, which is how the callback finds the wallet to credit.
"""

from __future__ import annotations

import re
from uuid import UUID

# The wallet id as this API issues it (canonical, lower-case), then 1 to 64 characters that
# every gateway takes in a reference.
_ORDER_REFERENCE = re.compile(
    r"(?P<wallet>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):[A-Za-z0-9._-]{1,64}",
    re.ASCII,
)


def order_reference(wallet_id: UUID, suffix: str) -> str:
    """The merchant reference of an order that tops up `wallet_id`."""
    reference = f"{wallet_id}:{suffix}"
    if wallet_of_order(reference) != wallet_id:
        raise ValueError(f"not a valid order suffix: {suffix!r}")
    return reference


def wallet_of_order(reference: str) -> UUID | None:
    """The wallet an order's merchant reference names; None if it is not one of ours."""
    match = _ORDER_REFERENCE.fullmatch(reference)
    return None if match is None else UUID(match["wallet"])
