"""A claim's answer in the words of NCPDP's Telecommunication Standard (D.0), for pharmacy
systems built on it. Our decision and reason codes stay primary; this is a translation of
them, made from the adjudication event alone (so a replay translates the same way).

transactionStatus (112-AN): P paid (approved or partly), R rejected, D a duplicate of a paid
claim (an identical retry answered with the standing charge), C captured (a paid claim that
captured a benefit hold: not given yet, the answer is made from the claim's event and the
capture is an event after it, so such a claim answers P), A an approved reversal, S a
duplicate of an approved reversal.

rejectCodes (511-FB), from our reasons (docs/architecture.md, "NCPDP vocabulary"):

| our reason                          | NCPDP | NCPDP's words                          |
|-------------------------------------|-------|----------------------------------------|
| card_not_activated                  | 67    | Filled Before Coverage Effective       |
| card_suspended                      | 65    | Patient Is Not Covered                 |
| card_cancelled                      | 69    | Filled After Coverage Terminated       |
| card_expired                        | 68    | Filled After Coverage Expired          |
| beneficiary_not_on_card             | 53    | Non-Matched Person Code                |
| monthly_limit_exhausted             | 76    | Plan Limitations Exceeded              |
| refill_too_soon                     | 79    | Refill Too Soon                        |
| any other reason of a rejection     | 85    | Claim Not Processed                    |

Amounts (money as two-decimal strings, like the rest of the answer): totalAmountPaid (509-F9)
what the plan pays the pharmacy (our coveredAmount); patientPayAmount (505-F5) what the
patient owes (our copaymentAmount: the copay share plus what the benefit did not cover);
amountExceedingPeriodicBenefitMaximum (520-FK) the part of it that is there only because the
month's benefit ran out; remainingBenefitAmount (514-FS) the month's benefit left after it.
"""

from __future__ import annotations

from typing import Any, Literal

from domain.events import ClaimAdjudicated, ClaimReversed
from domain.medcard.claims import (
    BENEFICIARY_NOT_ON_CARD,
    CARD_CANCELLED,
    CARD_EXPIRED,
    CARD_NOT_ACTIVATED,
    CARD_SUSPENDED,
    LIMIT_EXHAUSTED,
    LIMIT_PARTLY_USED_UP,
)
from domain.medcard.refills import REFILL_TOO_SOON
from domain.money import ZERO, percent_of

TransactionStatus = Literal["P", "R", "D", "C", "A", "S"]

REJECT_CODES: dict[str, str] = {
    CARD_NOT_ACTIVATED: "67",
    CARD_SUSPENDED: "65",
    CARD_CANCELLED: "69",
    CARD_EXPIRED: "68",
    BENEFICIARY_NOT_ON_CARD: "53",
    LIMIT_EXHAUSTED: "76",
    REFILL_TOO_SOON: "79",
}
NOT_PROCESSED = "85"  # a rejection whose reason has no closer NCPDP code
# Reasons that say the month's benefit bounded what was covered.
_BENEFIT_BOUND = frozenset({LIMIT_EXHAUSTED, LIMIT_PARTLY_USED_UP})


def reject_codes(claim: ClaimAdjudicated) -> list[str]:
    """The NCPDP reject codes of a rejected claim, each once, in reason order; [] otherwise."""
    if claim.decision != "rejected":
        return []
    codes = dict.fromkeys(REJECT_CODES.get(reason, NOT_PROCESSED) for reason in claim.reasons)
    return list(codes) or [NOT_PROCESSED]


def claim_status(claim: ClaimAdjudicated, *, duplicate: bool) -> TransactionStatus:
    if claim.decision == "rejected":
        return "R"
    if duplicate:
        return "D"
    return "P"


def claim_fields(claim: ClaimAdjudicated, *, duplicate: bool) -> dict[str, Any]:
    """The `ncpdp` object of a claim's answer. `duplicate`: the answer is that of an identical
    earlier claim (nothing new was booked)."""
    exceeding = ZERO
    if any(reason in _BENEFIT_BOUND for reason in claim.reasons):
        share = percent_of(claim.total_amount, claim.copay_percent)
        exceeding = max(ZERO, claim.total_amount - share - claim.covered_amount)
    return {
        "transactionStatus": claim_status(claim, duplicate=duplicate),
        "rejectCodes": reject_codes(claim),
        "totalAmountPaid": str(claim.covered_amount),
        "patientPayAmount": str(claim.copayment_amount),
        "amountExceedingPeriodicBenefitMaximum": str(exceeding),
        "remainingBenefitAmount": str(claim.remaining_after),
    }


def reversal_fields(reversal: ClaimReversed, *, duplicate: bool) -> dict[str, Any]:
    """The `ncpdp` object of a reversal's answer."""
    return {
        "transactionStatus": "S" if duplicate else "A",
        "rejectCodes": [],
        "remainingBenefitAmount": str(reversal.remaining_after),
    }
