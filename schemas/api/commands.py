"""Request bodies of the write API (camelCase on the wire, unknown fields refused; the payment
gateways' callbacks are the gateways' own bodies, at the end).

Every constraint of the write side's input is declared here, so the published documents
(schemas/api/openapi.py) are derived from what is enforced:

- money and percentages: `MONEY` and `PERCENT` (domain/money.py), as a JSON number or string;
- text: no control characters (U+0000-U+001F, U+007F-U+009F), surrounding whitespace
  trimmed, bounded length; lone surrogates cannot get past the JSON parser;
- dates: `YYYY-MM-DD` strings only; ids: canonical UUIDs (8-4-4-4-12 hexadecimal digits);
- headers used as data: `Idempotency-Key` and `X-Correlation-Id` (IDEMPOTENCY_KEY,
  CORRELATION_ID); a body is at most MAX_BODY_BYTES; no key twice in one JSON object.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from domain.medcard.claims import MAX_QUANTITY
from domain.medcard.holds import MAX_HOLD_HOURS
from domain.medcard.refills import MAX_DAYS_SUPPLY
from domain.money import CENT, LIMIT, MONEY, PERCENT, DecimalRule, MoneyError

# C0 and C1 control characters and DEL: PostgreSQL cannot store NUL in text or jsonb, and
# the others only ever arrive to smuggle something into a log line or a receipt.
CONTROL_CHARACTERS = r"\u0000-\u001f\u007f-\u009f"
NO_CONTROL_PATTERN = f"^[^{CONTROL_CHARACTERS}]*$"
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_UUID = re.compile(UUID_PATTERN, re.ASCII)


class HeaderRule:
    """A request header whose value is stored: visible ASCII and spaces, bounded length.
    `blank_is_absent`: an empty value is taken as no header (the server makes one up)."""

    def __init__(self, name: str, max_length: int, *, blank_is_absent: bool = False) -> None:
        self.name = name
        self.max_length = max_length
        self.blank_is_absent = blank_is_absent
        self.pattern = f"^[\\x20-\\x7e]{{1,{max_length}}}$"
        self._regex = re.compile(self.pattern, re.ASCII)

    def accepts(self, value: str) -> bool:
        return self._regex.fullmatch(value) is not None

    @property
    def wire_pattern(self) -> str:
        """The value as a client may send it: HTTP drops the spaces and tabs around a field
        value (RFC 9110 §5.5) before the server sees it, so they may pad what `pattern` takes."""
        core = f"[\\x21-\\x7e](?:[\\x20-\\x7e]{{0,{self.max_length - 2}}}[\\x21-\\x7e])?"
        return f"^[\\t ]*(?:{core}){'?' if self.blank_is_absent else ''}[\\t ]*$"


# A write's body, read no further than this (413 body_too_large).
MAX_BODY_BYTES = 64 * 1024
IDEMPOTENCY_KEY = HeaderRule("Idempotency-Key", 255)
CORRELATION_ID = HeaderRule("X-Correlation-Id", 100, blank_is_absent=True)


def uuid_from_text(text: str) -> UUID | None:
    """A canonical UUID, or None. UUID() alone also takes braces, "urn:uuid:", missing
    hyphens and, through int(), underscores and padding."""
    return UUID(text) if _UUID.fullmatch(text) is not None else None


# MoneyError kinds -> the error types pydantic itself reports for the same fault.
_ERROR_TYPES = {
    "format": "decimal_format",
    "places": "decimal_max_places",
    "too_large": "less_than_equal",
}


# How command_service/bodies.py passes a JSON *number* on as its text when a float could have
# rounded it: behind a NUL, which no text field accepts (NO_CONTROL_PATTERN), so a number sent
# for a text field is still refused there, while the decimal rules judge the text as written.
NUMBER_TEXT = "\x00"


def _decimal(rule: DecimalRule) -> PlainValidator:
    """The rule as the field's whole validator (spelling and range in one call: a pydantic
    Decimal with constraints on top would cost four times as much per field). Documented as
    the Decimal it amounts to, which the public document spells out as the plain spelling
    (schemas/api/formats.py: decimal_schema)."""
    too_small = "greater_than" if rule.minimum == CENT else "greater_than_equal"

    def parse(value: object) -> Decimal:
        if isinstance(value, str) and value.startswith(NUMBER_TEXT):
            value = value[1:]  # a JSON number's own text (see NUMBER_TEXT)
        try:
            return rule.parse(value)
        except MoneyError as exc:
            kind = too_small if exc.kind == "too_small" else _ERROR_TYPES[exc.kind]
            raise PydanticCustomError(kind, str(exc)) from exc

    positive = rule.minimum == CENT  # "greater than zero", as the document says it
    implied = Decimal(10**rule.integer_digits) - CENT  # the largest the digits allow
    documented = Field(
        max_digits=rule.integer_digits + 2,
        decimal_places=2,
        gt=Decimal(0) if positive else None,
        ge=None if positive else rule.minimum,
        le=None if rule.maximum == implied else rule.maximum,
    )
    return PlainValidator(parse, json_schema_input_type=Annotated[Decimal, documented])


def _canonical_uuid(value: object) -> object:
    if isinstance(value, str) and _UUID.fullmatch(value) is None:
        raise PydanticCustomError("uuid_format", "must be a UUID as 8-4-4-4-12 hexadecimal digits")
    return value


# Money, limits and percentages: one rule each (domain/money.py).
Amount = Annotated[Decimal, _decimal(MONEY)]
Limit = Annotated[Decimal, _decimal(LIMIT)]  # a limit the member sets: 0 is none
Percent = Annotated[Decimal, _decimal(PERCENT)]


def _whole(low: int, high: int, range_code: str) -> PlainValidator:
    """An int field that takes what JSON calls an integer: 2.0 is one too (JSON Schema's
    "integer" says so, and so may a client's serializer), but not 2.5, "2" or true. Exponents
    and long fractions never get here as numbers (command_service/bodies.py hands their text
    over)."""

    def check(value: object) -> int:
        if type(value) is float and value.is_integer():
            value = int(value)
        if type(value) is not int:
            raise PydanticCustomError("int_type", "must be a whole number")
        if not low <= value <= high:
            raise PydanticCustomError(range_code, f"must be {low:,} to {high:,}")
        return value

    return PlainValidator(check, json_schema_input_type=Annotated[int, Field(ge=low, le=high)])


Quantity = Annotated[int, _whole(1, MAX_QUANTITY, "quantity_range")]
DaysSupply = Annotated[int, _whole(1, MAX_DAYS_SUPPLY, "days_supply_range")]


# Every string field: no control characters (checked by pydantic's own regex engine, no
# Python call per field), surrounding whitespace trimmed where it says so; the length is
# the field's own.
_trimmed = partial(
    StringConstraints, strip_whitespace=True, min_length=1, pattern=NO_CONTROL_PATTERN
)
Text = Annotated[str, _trimmed(max_length=100)]
Reason = Annotated[str, _trimmed(max_length=500)]
Reference = Annotated[str, _trimmed(max_length=100)]
Code = Annotated[str, _trimmed(max_length=50)]
Name = Annotated[str, _trimmed(max_length=200)]
Short = Annotated[str, StringConstraints(min_length=1, max_length=20, pattern=NO_CONTROL_PATTERN)]
NationalId = Annotated[
    str, StringConstraints(min_length=1, max_length=14, pattern=NO_CONTROL_PATTERN)
]
PolicyNumber = Annotated[
    str, StringConstraints(min_length=1, max_length=50, pattern=NO_CONTROL_PATTERN)
]
Day = Annotated[date, Field(strict=True)]  # "YYYY-MM-DD"; no timestamps or datetimes
Uuid = Annotated[
    UUID, BeforeValidator(_canonical_uuid), WithJsonSchema({"type": "string", "format": "uuid"})
]


class Body(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=False, frozen=True
    )


class Person(Body):
    relationship: Short = "self"
    national_id: NationalId
    name: Text
    date_of_birth: Day
    phone_number: Short


class IssueCardBody(Body):
    user_id: Text
    card_type: Short
    monthly_limit: Amount | None = None
    copayment_percentage: Percent | None = None
    primary_holder: Person | None = None
    insurance_provider: Text | None = None
    policy_number: PolicyNumber | None = None
    expiry_date: Day | None = None
    status: Annotated[str, StringConstraints(pattern="^(ACTIVE|PENDING)$")] = "ACTIVE"


class StatusChangeBody(Body):
    reason: Reason | None = None


class AddBeneficiaryBody(Person):
    relationship: Short


class ClaimItemBody(Body):
    drug_code: Code
    drug_name: Name
    quantity: Quantity
    unit_price: Amount
    days_supply: DaysSupply | None = Field(
        None,
        description="how many days the dispensed quantity lasts: a later claim of this drug"
        " (by `drugCode`) for the same beneficiary before REFILL_MIN_ELAPSED_SHARE (0.75) of"
        " it has elapsed is rejected `refill_too_soon`, with `nextAvailableFillDate`",
    )


# "quote": the answer a claim would get, with nothing stored (docs/architecture.md, "Point of
# sale"); "claim" books it.
ClaimMode = Literal["claim", "quote"]
# The number printed on a card: 16 digits (Luhn, prefix 6048: domain/identity.py). Any other
# 16 digits name no card (404 card_not_found), as an unknown card id does.
CARD_NUMBER_PATTERN = "^[0-9]{16}$"
CardNumber = Annotated[str, StringConstraints(pattern=CARD_NUMBER_PATTERN)]


class ClaimBody(Body):
    prescription_id: Text
    total_amount: Amount
    beneficiary_id: Uuid | None = None
    items: Annotated[list[ClaimItemBody], Field(max_length=200)] = []
    pay_copayment_from_wallet: Annotated[bool, Field(strict=True)] = False
    hold_id: Uuid | None = Field(
        None,
        description="a benefit hold of this pharmacy for this prescription that the claim"
        " captures: its amount is available to the claim, and the hold is closed",
    )
    mode: ClaimMode = Field(
        "claim",
        description="`quote`: answered as the claim would be now (200, `position` null), and"
        " nothing is stored: no claim, no wallet debit, no Idempotency-Key",
    )


class CardClaimBody(ClaimBody):
    """A claim naming the card by its printed number, as a pharmacy's system knows it."""

    card_number: CardNumber
    beneficiary_national_id: NationalId | None = Field(
        None,
        description="the beneficiary by national id instead of `beneficiaryId` (not both: 422"
        " conflicting_beneficiary); one not on the card is 422 beneficiary_not_on_card",
    )


class HoldBody(Body):
    """A benefit hold: `amount` of the month's benefit reserved for the prescription
    (domain/medcard/holds.py)."""

    amount: Amount
    prescription_id: Text
    beneficiary_id: Uuid | None = None
    expires_in_hours: Annotated[int, _whole(1, MAX_HOLD_HOURS, "hours_range")] | None = Field(
        None, description="how long the hold stays open (default: the HOLD_TTL_HOURS setting)"
    )


class CardHoldBody(HoldBody):
    """A hold naming the card by its printed number, as a pharmacy's system knows it."""

    card_number: CardNumber
    beneficiary_national_id: NationalId | None = Field(
        None,
        description="the beneficiary by national id instead of `beneficiaryId` (not both: 422"
        " conflicting_beneficiary)",
    )


class VoidHoldBody(Body):
    reason: Reason | None = None


class ReversalBody(Body):
    reason: Reason | None = None


class RefillOverrideBody(Body):
    """Let a refill of `drugCode` through before it is due (ops and admins)."""

    beneficiary_id: Uuid | None = Field(
        None, description="the beneficiary; absent: the card's primary holder"
    )
    drug_code: Code
    reason: Reason
    valid_until: Day | None = Field(
        None,
        description="absent: the next claim of this beneficiary and drug consumes the override;"
        " a date: every such claim through that day (Africa/Cairo) passes the refill check."
        " Not before today (422 invalid_valid_until); a beneficiary not on the card is 422"
        " beneficiary_not_on_card",
    )


class OpenWalletBody(Body):
    user_id: Text


def _in_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# A moment given with its offset, kept in UTC like every time the ledger records.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_in_utc)]


class TopUpBody(Body):
    gateway: Short
    gateway_reference: Reference
    amount: Amount
    paid_at: UtcDatetime | None = Field(
        None,
        description="when the gateway says the member paid (its callback's payment time, with"
        " a UTC offset; kept in UTC) for reconciliation; null if not given. A retried"
        " callback with another time is still the same top-up",
    )


class DebitBody(Body):
    amount: Amount
    reference: Reference
    purpose: Code = "purchase"


class RefundBody(Body):
    """A refund of a direct debit, in part or whole; several may follow, never more in all
    than the debit."""

    amount: Amount | None = Field(
        None,
        description="what to refund; absent or null: all of the debit not refunded yet. More"
        " than that is 409 refund_exceeds_debit, whose detail says what is still refundable",
    )
    reason: Reason = Field(description="why, for the member's statement and the audit")


class CopayConsentBody(Body):
    """The member's consent to claims' copayments paid from the wallet; 0 and 0 withdraws it."""

    per_claim_limit: Limit = Field(
        description="the most one claim's copayment may be; not more than `monthlyLimit` (422"
        " invalid_copay_consent)"
    )
    monthly_limit: Limit = Field(
        description="the most all claims may take in a calendar month (Africa/Cairo)"
    )


class EligibilityBody(Body):
    """Would a claim on this card, for this beneficiary, be covered now? (No side effect.)"""

    card_number: CardNumber
    beneficiary_id: Uuid | None = None
    beneficiary_national_id: NationalId | None = Field(
        None,
        description="the beneficiary by national id instead of `beneficiaryId` (not both: 422"
        " conflicting_beneficiary); one not on the card is 422 beneficiary_not_on_card",
    )


# --------------------------------------------------------------- payment-gateway callbacks
#
# The gateways' own bodies, as they document them: their field names, and every field they
# send besides the ones read here ignored (a gateway adds fields without notice; refusing
# them would refuse genuine payments). The fields a signature covers are taken exactly as
# sent: no trimming, since the signature is over the text as the gateway wrote it.

Signed = Annotated[str, StringConstraints(max_length=200, pattern=NO_CONTROL_PATTERN)]
SignedId = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=NO_CONTROL_PATTERN)
]
Flag = Annotated[bool, Field(strict=True)]  # true or false; not "true", not 1
Integer = Annotated[int, _whole(0, 2**63 - 1, "integer_range")]  # 920.0 is 920, as in JSON


class GatewayBody(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=False, frozen=True)


class FawryNotificationBody(GatewayBody):
    """FawryPay's server-to-server notification V2 (camelCase, Fawry's spelling throughout,
    `paymentRefrenceNumber` included)."""

    model_config = ConfigDict(alias_generator=to_camel)

    fawry_ref_number: SignedId = Field(
        description="Fawry's reference of the payment: it credits one wallet, once"
    )
    merchant_ref_number: SignedId = Field(
        description="the order's merchant reference: `<walletId>:<suffix>` (the wallet topped"
        " up; another reference is 422 unknown_merchant_reference)"
    )
    payment_amount: Limit
    order_amount: Limit = Field(description="what the wallet is credited with")
    order_status: SignedId = Field(description="only PAID credits; any other is acknowledged")
    payment_method: Signed
    payment_refrence_number: Signed | None = None
    payment_time: Integer | None = Field(
        None,
        description="when the customer paid, in milliseconds since 1970 (UTC); kept as the"
        " top-up's paid time. Not among the signed fields",
    )
    message_signature: Annotated[
        str, StringConstraints(max_length=128, pattern=NO_CONTROL_PATTERN)
    ] = Field(description="SHA-256 (hex) over the signed fields and the merchant's security key")


class PaymobOrder(GatewayBody):
    id: Integer
    merchant_order_id: SignedId | None = Field(
        None, description="the merchant reference: `<walletId>:<suffix>`"
    )


class PaymobSourceData(GatewayBody):
    pan: Signed | None = None
    sub_type: Signed | None = None
    type: Signed | None = None


class PaymobTransaction(GatewayBody):
    """The fields of Paymob's transaction that its HMAC covers, and the merchant reference."""

    amount_cents: Integer = Field(description="the wallet is credited amount_cents / 100")
    created_at: Signed = Field(
        description="the transaction's time (signed); kept as the top-up's paid time, an ISO"
        " 8601 time without an offset being Cairo's"
    )
    currency: Signed
    error_occured: Flag  # Paymob's spelling
    has_parent_transaction: Flag
    id: Integer = Field(description="Paymob's transaction id: it credits one wallet, once")
    integration_id: Integer
    is_3d_secure: Flag
    is_auth: Flag
    is_capture: Flag
    is_refunded: Flag
    is_standalone_payment: Flag
    is_voided: Flag
    order: PaymobOrder
    owner: Integer
    pending: Flag
    source_data: PaymobSourceData
    success: Flag


class PaymobCallbackBody(GatewayBody):
    """Paymob's transaction processed callback; its HMAC comes in the `hmac` query parameter."""

    type: Literal["TRANSACTION"]
    obj: PaymobTransaction
