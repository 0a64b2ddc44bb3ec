"""Who may do what: role checks, and object-level checks on the card or wallet itself."""

from __future__ import annotations

from domain.medcard.state import MedCardState
from domain.wallet.model import WalletState
from infrastructure.auth.tokens import Principal, Role
from infrastructure.http.problems import Problem

STAFF = frozenset({Role.ADMIN, Role.OPS})


def require_role(principal: Principal, allowed: frozenset[Role], action: str) -> None:
    if principal.role not in allowed:
        raise Problem(403, "forbidden", f"the {principal.role.value} role may not {action}")


def card_visible(principal: Principal, card: MedCardState | None) -> MedCardState:
    """A member sees only their own cards; another member's card is 'not found', not 'forbidden',
    so card ids cannot be probed."""
    if card is None or (principal.role is Role.MEMBER and card.user_id != principal.subject):
        raise Problem(404, "card_not_found", "no such card")
    return card


def wallet_visible(principal: Principal, wallet: WalletState | None) -> WalletState:
    if wallet is None or (
        principal.role is Role.MEMBER and wallet.owner_user_id != principal.subject
    ):
        raise Problem(404, "wallet_not_found", "no such wallet")
    return wallet


def acting_pharmacy(principal: Principal) -> str:
    """The pharmacy a claim is booked to always comes from the token, never from the body."""
    if principal.role is Role.PHARMACY and principal.pharmacy_id:
        return principal.pharmacy_id
    if principal.role is Role.ADMIN:
        return principal.pharmacy_id or f"admin:{principal.subject}"
    raise Problem(403, "forbidden", f"the {principal.role.value} role may not post claims")
