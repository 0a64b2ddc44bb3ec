"""MedCard lifecycle and beneficiaries: `decide(state, command) -> events`, pure."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from domain.calendar import add_months, cairo_date
from domain.errors import CommandRejected, Kind
from domain.events import (
    BeneficiaryAdded,
    BeneficiaryRemoved,
    DomainEvent,
    Holder,
    MedCardActivated,
    MedCardCancelled,
    MedCardExpired,
    MedCardIssued,
    MedCardReactivated,
    MedCardRenewed,
    MedCardSuspended,
)
from domain.identity import IdentityError, check_national_id, luhn_valid, normalize_mobile
from domain.medcard.card_types import CARD_TYPES
from domain.medcard.commands import (
    ActivateCard,
    AddBeneficiary,
    CancelCard,
    ExpireCard,
    IssueCard,
    MedCardCommand,
    PersonDetails,
    ReactivateCard,
    RemoveBeneficiary,
    RenewCard,
    SuspendCard,
)
from domain.medcard.state import MedCardState
from domain.money import CURRENCY, MoneyError, money

RELATIONSHIPS = frozenset({"self", "spouse", "child", "parent", "sibling", "other"})
MAX_COPAY_PERCENT = Decimal("100.00")


def decide(state: MedCardState | None, command: MedCardCommand) -> list[DomainEvent]:
    if isinstance(command, IssueCard):
        return _issue(state, command)
    if state is None:
        raise CommandRejected("card_not_found", "no such card", Kind.NOT_FOUND)
    match command:
        case ActivateCard(at=at):
            _require_status(state, "activate", {"PENDING"})
            return [MedCardActivated(at=at)]
        case SuspendCard(at=at, reason=reason):
            _require_status(state, "suspend", {"ACTIVE"})
            return [MedCardSuspended(reason=reason, at=at)]
        case ReactivateCard(at=at):
            _require_status(state, "reactivate", {"SUSPENDED"})
            if cairo_date(at) > state.expiry_date:
                raise CommandRejected(
                    "card_expired", "the card has expired; renew it instead", Kind.CONFLICT
                )
            return [MedCardReactivated(at=at)]
        case CancelCard(at=at, reason=reason):
            _require_status(state, "cancel", {"PENDING", "ACTIVE", "SUSPENDED", "EXPIRED"})
            return [MedCardCancelled(reason=reason, at=at)]
        case RenewCard(at=at):
            _require_status(state, "renew", {"ACTIVE", "SUSPENDED", "EXPIRED"})
            validity = CARD_TYPES[state.card_type].validity_months
            start = max(state.expiry_date, cairo_date(at))
            return [
                MedCardRenewed(
                    previous_expiry_date=state.expiry_date,
                    expiry_date=add_months(start, validity),
                    at=at,
                )
            ]
        case ExpireCard(at=at):
            _require_status(state, "expire", {"PENDING", "ACTIVE", "SUSPENDED"})
            if cairo_date(at) <= state.expiry_date:
                raise CommandRejected(
                    "card_not_yet_expired",
                    f"the card is valid until {state.expiry_date.isoformat()}",
                    Kind.CONFLICT,
                )
            return [MedCardExpired(at=at)]
        case AddBeneficiary():
            return _add_beneficiary(state, command)
        case RemoveBeneficiary(beneficiary_id=beneficiary_id, at=at):
            if state.status == "CANCELLED":
                raise _wrong_status(state, "change beneficiaries of")
            if beneficiary_id == state.primary_beneficiary_id:
                raise CommandRejected(
                    "primary_holder_not_removable",
                    "the primary holder cannot be removed",
                    Kind.CONFLICT,
                )
            if beneficiary_id not in state.beneficiaries:
                raise CommandRejected(
                    "beneficiary_not_found", "no such beneficiary on this card", Kind.NOT_FOUND
                )
            return [BeneficiaryRemoved(beneficiary_id=beneficiary_id, at=at)]
    raise TypeError(f"unknown command {type(command).__name__}")


def _issue(state: MedCardState | None, command: IssueCard) -> list[DomainEvent]:
    if state is not None:
        raise CommandRejected("card_exists", "a card with this id exists", Kind.CONFLICT)
    defaults = CARD_TYPES.get(command.card_type)
    if defaults is None:
        raise CommandRejected(
            "unknown_card_type", f"card type must be one of {', '.join(sorted(CARD_TYPES))}"
        )
    if len(command.card_number) != 16 or not luhn_valid(command.card_number):
        raise CommandRejected("invalid_card_number", "card number must be 16 Luhn-valid digits")
    if not command.user_id.strip():
        raise CommandRejected("invalid_user_id", "userId must not be blank")
    limit = _money(command.monthly_limit, defaults.monthly_limit, "monthlyLimit")
    copay = _money(command.copay_percent, defaults.copay_percent, "copaymentPercentage")
    if limit <= 0:
        raise CommandRejected("invalid_amount", "monthlyLimit must be greater than zero")
    if not Decimal(0) <= copay <= MAX_COPAY_PERCENT:
        raise CommandRejected("invalid_copay_percent", "copay percentage must be 0 to 100")
    overrides = (limit != defaults.monthly_limit) or (copay != defaults.copay_percent)
    if overrides and not command.may_override_terms:
        raise CommandRejected(
            "terms_override_forbidden",
            "only an admin may set a monthly limit or copay other than the card type's",
            Kind.FORBIDDEN,
        )
    today = cairo_date(command.at)
    expiry = command.expiry_date or add_months(today, defaults.validity_months)
    if expiry <= today:
        raise CommandRejected("invalid_expiry_date", "expiry date must be in the future")
    holder_id = command.primary_beneficiary_id or command.card_id
    if command.primary_holder is None:
        holder = Holder(beneficiary_id=holder_id, relationship="self")
    else:
        holder = _holder(holder_id, command.primary_holder, today)
    return [
        MedCardIssued(
            card_id=command.card_id,
            card_number=command.card_number,
            user_id=command.user_id,
            card_type=command.card_type,
            status="ACTIVE" if command.activate else "PENDING",
            monthly_limit=limit,
            copay_percent=copay,
            max_beneficiaries=defaults.max_beneficiaries,
            currency=CURRENCY,
            primary_holder=holder,
            insurance_provider=command.insurance_provider,
            policy_number=command.policy_number,
            issued_at=command.at,
            expiry_date=expiry,
        )
    ]


def _add_beneficiary(state: MedCardState, command: AddBeneficiary) -> list[DomainEvent]:
    if state.status in {"CANCELLED", "EXPIRED"}:
        raise _wrong_status(state, "add beneficiaries to")
    dependants = len(state.beneficiaries) - 1
    if dependants >= state.max_beneficiaries:
        raise CommandRejected(
            "beneficiary_limit_reached",
            f"a {state.card_type} card covers at most {state.max_beneficiaries} beneficiaries",
            Kind.CONFLICT,
        )
    holder = _holder(command.beneficiary_id, command.person, cairo_date(command.at))
    for existing in state.beneficiaries.values():
        if existing.national_id == holder.national_id:
            raise CommandRejected(
                "beneficiary_already_on_card",
                "a beneficiary with this national id is on the card",
                Kind.CONFLICT,
            )
    return [BeneficiaryAdded(beneficiary=holder, at=command.at)]


def _holder(beneficiary_id: object, person: PersonDetails, today: date) -> Holder:
    if person.relationship not in RELATIONSHIPS:
        raise CommandRejected(
            "invalid_relationship",
            f"relationship must be one of {', '.join(sorted(RELATIONSHIPS))}",
        )
    name = " ".join(person.name.split())
    if not name or len(name) > 100:
        raise CommandRejected("invalid_name", "name must be 1 to 100 characters")
    try:
        check_national_id(person.national_id, person.date_of_birth, today)
        phone = normalize_mobile(person.phone_number)
    except IdentityError as exc:
        raise CommandRejected(exc.code, str(exc)) from exc
    return Holder.model_validate(
        {
            "beneficiary_id": beneficiary_id,
            "relationship": person.relationship,
            "national_id": person.national_id,
            "name": name,
            "date_of_birth": person.date_of_birth,
            "phone_number": phone,
        }
    )


def _money(value: Decimal | None, default: Decimal, field: str) -> Decimal:
    if value is None:
        return default
    try:
        return money(value)
    except MoneyError as exc:
        raise CommandRejected("invalid_amount", f"{field}: {exc}") from exc


def _require_status(state: MedCardState, action: str, allowed: set[str]) -> None:
    if state.status not in allowed:
        raise _wrong_status(state, action)


def _wrong_status(state: MedCardState, action: str) -> CommandRejected:
    return CommandRejected(
        "invalid_status_transition",
        f"cannot {action} a card that is {state.status}",
        Kind.CONFLICT,
    )


def is_expired_on(state: MedCardState, at: datetime) -> bool:
    return cairo_date(at) > state.expiry_date
