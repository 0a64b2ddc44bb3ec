"""Idempotency-Key scopes: one per (role, sub, pharmacy), whatever the ids contain."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from infrastructure.auth.tokens import Principal, Role

# ids made of the characters the scope's form uses, so that collisions are searched for hard
ids = st.text(alphabet=":@%3Ab", max_size=6)
principals = st.builds(
    Principal, subject=ids, role=st.sampled_from(list(Role)), pharmacy_id=st.none() | ids
)


def _caller(p: Principal) -> tuple[Role, str, str]:
    return p.role, p.subject, p.pharmacy_id or ""  # no pharmacy and "" are the same caller


@given(principals, principals)
def test_two_callers_never_share_a_scope(first: Principal, second: Principal) -> None:
    same_caller = _caller(first) == _caller(second)
    assert (first.idempotency_scope == second.idempotency_scope) == same_caller


def test_the_scope_form_the_migration_writes() -> None:
    assert Principal("u-1", Role.MEMBER).idempotency_scope == "member:u-1"
    assert Principal("till:1", Role.PHARMACY, "ph:1%").idempotency_scope == (
        "pharmacy@ph%3A1%25:till:1"
    )
