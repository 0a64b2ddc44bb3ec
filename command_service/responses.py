"""Answers of the write API, made from the event that answers the command.

Making answers from the recorded events (not from live state) means a replayed request, an
idempotent repeat or a retry after a crash always gets exactly the answer the first request got,
but for the NCPDP transaction status of claims and reversals, which names a repeat as one.
Money is a string with two decimals ("315.00"): JSON numbers would invite float rounding.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from command_service.execution import Outcome
from domain.events import (
    BeneficiaryAdded,
    BeneficiaryRemoved,
    ClaimAdjudicated,
    ClaimReversed,
    DomainEvent,
    Holder,
    HoldPlaced,
    HoldVoided,
    MedCardActivated,
    MedCardCancelled,
    MedCardExpired,
    MedCardIssued,
    MedCardReactivated,
    MedCardRenewed,
    MedCardSuspended,
    RefillOverrideGranted,
    WalletCopayConsentSet,
    WalletDebited,
    WalletOpened,
    WalletRefunded,
    WalletToppedUp,
)
from domain.medcard import ncpdp
from domain.medcard.state import STATUS_AFTER


def render(outcome: Outcome) -> dict[str, Any]:
    result = outcome.result
    body = _body(result, outcome.aggregate_id)
    # NCPDP's words for claims and reversals (domain/medcard/ncpdp.py): the one part of an
    # answer that tells a first answer from a repeat, as NCPDP's duplicate statuses do.
    if isinstance(result, ClaimAdjudicated):
        body["ncpdp"] = ncpdp.claim_fields(result, duplicate=not outcome.created)
    elif isinstance(result, ClaimReversed):
        body["ncpdp"] = ncpdp.reversal_fields(result, duplicate=not outcome.created)
    body["eventType"] = result.event_type
    body["version"] = outcome.version
    body["position"] = outcome.position
    if outcome.quote:
        body["mode"] = "quote"
        body["position"] = None  # nothing was stored: the answer is no write to read back
    return body


def _body(event: DomainEvent, aggregate_id: UUID) -> dict[str, Any]:
    match event:
        case MedCardIssued():
            return {
                "id": str(event.card_id),
                "cardNumber": event.card_number,
                "userId": event.user_id,
                "cardType": event.card_type,
                "status": event.status,
                "monthlyLimit": str(event.monthly_limit),
                "copaymentPercentage": str(event.copay_percent),
                "maxBeneficiaries": event.max_beneficiaries,
                "currency": event.currency,
                "primaryHolder": holder(event.primary_holder),
                "insuranceProvider": event.insurance_provider,
                "policyNumber": event.policy_number,
                "issuedAt": event.issued_at.isoformat(),
                "expiryDate": event.expiry_date.isoformat(),
            }
        case MedCardRenewed():
            return {
                "id": str(aggregate_id),
                "previousExpiryDate": event.previous_expiry_date.isoformat(),
                "expiryDate": event.expiry_date.isoformat(),
            }
        case MedCardActivated() | MedCardReactivated() | MedCardSuspended() | MedCardCancelled():
            return {"id": str(aggregate_id), "status": STATUS_AFTER[type(event)]}
        case MedCardExpired():
            return {"id": str(aggregate_id), "status": "EXPIRED"}
        case BeneficiaryAdded():
            return {"medcardId": str(aggregate_id), **holder(event.beneficiary)}
        case BeneficiaryRemoved():
            return {
                "medcardId": str(aggregate_id),
                "id": str(event.beneficiary_id),
                "removed": True,
            }
        case ClaimAdjudicated():
            return claim(event, aggregate_id)
        case RefillOverrideGranted():
            return {
                "id": str(event.override_id),
                "medcardId": str(aggregate_id),
                "beneficiaryId": str(event.beneficiary_id),
                "drugCode": event.drug_code,
                "reason": event.reason,
                "validUntil": None if event.valid_until is None else event.valid_until.isoformat(),
                "grantedBy": event.granted_by,
                "grantedAt": event.at.isoformat(),
            }
        case ClaimReversed():
            return {
                "claimId": str(event.claim_id),
                "medcardId": str(aggregate_id),
                "prescriptionId": event.prescription_id,
                "status": "reversed",
                "month": event.month,
                "restoredAmount": str(event.restored_amount),
                "walletRefund": str(event.wallet_refund),
                "remainingMonthlyLimit": str(event.remaining_after),
                "reversedAt": event.at.isoformat(),
            }
        case HoldPlaced() | HoldVoided():
            return hold(event, aggregate_id)
        case WalletOpened():
            return {
                "id": str(event.wallet_id),
                "ownerUserId": event.owner_user_id,
                "currency": event.currency,
                "balance": "0.00",
                "openedAt": event.at.isoformat(),
            }
        case WalletToppedUp():
            return _wallet_entry(aggregate_id, "topup", event.topup_id, event) | {
                "gateway": event.gateway,
                "gatewayReference": event.gateway_reference,
                "paidAt": None if event.paid_at is None else event.paid_at.isoformat(),
            }
        case WalletDebited():
            return _wallet_entry(aggregate_id, "debit", event.debit_id, event) | {
                "purpose": event.purpose,
                "reference": event.reference,
            }
        case WalletRefunded():
            return _wallet_entry(aggregate_id, "refund", event.refund_id, event) | {
                "debitId": str(event.debit_id),
                "reason": event.reason,
            }
        case WalletCopayConsentSet():
            return {
                "walletId": str(aggregate_id),
                "copayConsent": {
                    "perClaimLimit": str(event.per_claim_limit),
                    "monthlyLimit": str(event.monthly_limit),
                    "setAt": event.at.isoformat(),
                },
            }
    raise TypeError(f"no answer for {event.event_type}")


def claim(event: ClaimAdjudicated, card_id: UUID) -> dict[str, Any]:
    return {
        "claimId": str(event.claim_id),
        "medcardId": str(card_id),
        "prescriptionId": event.prescription_id,
        "pharmacyId": event.pharmacy_id,
        "beneficiaryId": str(event.beneficiary_id),
        "decision": event.decision,
        "reasons": list(event.reasons),
        "totalAmount": str(event.total_amount),
        "coveredAmount": str(event.covered_amount),
        "copaymentAmount": str(event.copayment_amount),
        "copaymentPercentage": str(event.copay_percent),
        "copaymentPaidFromWallet": str(event.copayment_paid_from_wallet),
        "walletId": str(event.wallet_id) if event.wallet_id else None,
        "items": [
            {
                "drugCode": item.drug_code,
                "drugName": item.drug_name,
                "quantity": item.quantity,
                "unitPrice": str(item.unit_price),
                "totalPrice": str(item.total_price),
                "coveredAmount": str(item.covered_amount),
                "copaymentAmount": str(item.copayment_amount),
                "daysSupply": item.days_supply,
            }
            for item in event.items
        ],
        # refill_too_soon: the first Cairo day the refill would pass. Velocity flags are not
        # in the answer: a pharmacy must not learn where the thresholds lie.
        "nextAvailableFillDate": (
            None
            if event.next_available_fill_date is None
            else event.next_available_fill_date.isoformat()
        ),
        "month": event.month,
        "monthlyLimit": str(event.monthly_limit),
        "monthSpent": str(event.month_spent_after),
        "remainingMonthlyLimit": str(event.remaining_after),
        "claimedAt": event.claimed_at.isoformat(),
    }


def hold(event: HoldPlaced | HoldVoided, card_id: UUID) -> dict[str, Any]:
    """A placed hold in full; a void names the hold, what it gave back and when."""
    if isinstance(event, HoldVoided):
        return {
            "holdId": str(event.hold_id),
            "medcardId": str(card_id),
            "pharmacyId": event.pharmacy_id,
            "status": "voided",
            "amount": str(event.amount),
            "month": event.month,
            "reason": event.reason,
            "voidedAt": event.at.isoformat(),
        }
    return {
        "holdId": str(event.hold_id),
        "medcardId": str(card_id),
        "prescriptionId": event.prescription_id,
        "pharmacyId": event.pharmacy_id,
        "beneficiaryId": str(event.beneficiary_id),
        "status": "open",
        "amount": str(event.amount),
        "month": event.month,
        "expiresAt": event.expires_at.isoformat(),
        "placedAt": event.at.isoformat(),
    }


def holder(person: Holder) -> dict[str, Any]:
    return {
        "id": str(person.beneficiary_id),
        "relationship": person.relationship,
        "nationalId": person.national_id,
        "name": person.name,
        "dateOfBirth": person.date_of_birth.isoformat() if person.date_of_birth else None,
        "phoneNumber": person.phone_number,
    }


def _wallet_entry(
    wallet_id: UUID,
    kind: str,
    entry_id: UUID,
    event: WalletToppedUp | WalletDebited | WalletRefunded,
) -> dict[str, Any]:
    return {
        "walletId": str(wallet_id),
        "transactionId": str(entry_id),
        "type": kind,
        "amount": str(event.amount),
        "balance": str(event.balance_after),
        "at": event.at.isoformat(),
    }
