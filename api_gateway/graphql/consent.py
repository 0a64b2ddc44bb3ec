"""The wallet's copayment consent, one Strawberry type shared by the queries (schema.py) and
the mutations (mutations.py, which schema.py imports, so it cannot import schema.py)."""

from __future__ import annotations

from typing import Any

import strawberry


@strawberry.type(
    description="How much claims may take from the wallet for their copayments (0 and 0:"
    " nothing, the default); a copayment is paid from the wallet whole or not at all."
)
class CopayConsent:
    per_claim_limit: str
    monthly_limit: str = strawberry.field(description="Per calendar month, Africa/Cairo.")
    set_at: str | None = strawberry.field(description="Null: the member never set it.")

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> CopayConsent:
        """From the REST bodies' `copayConsent` (the wallet read and the write's answer)."""
        return cls(
            per_claim_limit=body["perClaimLimit"],
            monthly_limit=body["monthlyLimit"],
            set_at=body["setAt"],
        )
