"""Who may see what on the read side (docs/design.md §7): the one owner of the rule that the
REST reads, GraphQL and the read-your-writes wait all ask.

Admin and ops see everything. A member sees only their own cards (with their claims and
beneficiaries) and wallets: another's is "not found", so ids cannot be probed. A pharmacy
sees only the claims it posted (another's is "not found") and no card or wallet at all: §7
gives it no read of a card; it acts on cards only through claims. How a refusal is said
(403 problem, FORBIDDEN error) is each edge's business; what is refused is decided here.

A pharmacy's statement (the claims it posted, `statement_pharmacy`) is the pharmacy's and
the staff's: a pharmacy reads its own, whose id comes from its token (a statement named for
another pharmacy is refused, not "not found": a statement is a list, never absent), staff
name the pharmacy, and members read none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

from api_gateway.watermarks import Stream
from infrastructure.auth.tokens import Principal, Role

# the kinds of object a root read names (a stream's kind; "card_number": a card by number)
Kind = Stream
_CLOSED_TO_PHARMACIES: frozenset[str] = frozenset({"card", "card_number", "wallet"})
_PLURAL = {"card": "cards", "card_number": "cards", "claim": "claims", "wallet": "wallets"}


def refusal(principal: Principal, kind: Kind) -> str | None:
    """Why this caller may read no object of `kind` at all (whatever its id); None when it
    may read some (then `visible_to` says which)."""
    if principal.role is Role.PHARMACY and kind in _CLOSED_TO_PHARMACIES:
        return f"the pharmacy role may not read {_PLURAL[kind]}"
    return None


class Guarded(Protocol):
    """A read's object as far as the rule looks: whose it is, which pharmacy posted it."""

    @property
    def owner(self) -> str: ...

    @property
    def pharmacy_id(self) -> str | None: ...


G = TypeVar("G", bound=Guarded)


def visible_to(principal: Principal, owned: G | None) -> G | None:
    """The row if this caller may see it; None (= not found) otherwise."""
    if owned is None:
        return None
    if principal.role is Role.MEMBER and owned.owner != principal.subject:
        return None
    if principal.role is Role.PHARMACY and owned.pharmacy_id != principal.pharmacy_id:
        return None
    return owned


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the caller may not make this read at all."""

    why: str


def statement_pharmacy(principal: Principal, asked: str | None) -> str | Refusal:
    """The pharmacy whose claims this caller's statement read answers: `asked` names one
    (None: the caller's own, "me"), which only staff may choose freely."""
    if principal.role is Role.MEMBER:
        return Refusal("the member role may not read pharmacy statements")
    if principal.role is Role.PHARMACY:
        # a pharmacy token always carries its pharmacy (infrastructure/auth/tokens.py)
        own = principal.pharmacy_id or ""
        if asked is not None and asked != own:
            return Refusal("a pharmacy may read only its own claims")
        return own
    if asked is None:
        return Refusal("only a pharmacy has claims of its own: name the pharmacy")
    return asked
