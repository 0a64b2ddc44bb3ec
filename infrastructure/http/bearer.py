"""Bearer-token authentication shared by the services' HTTP edges (401 as problem+json)."""

from __future__ import annotations

from collections.abc import Mapping

from infrastructure.auth.tokens import InvalidToken, Principal, TokenVerifier
from infrastructure.http.problems import Problem


def authenticate(verifier: TokenVerifier, headers: Mapping[str, str]) -> Principal:
    """The caller named by `Authorization: Bearer <token>`; a Problem(401) otherwise.

    `headers` must look names up case-insensitively (Starlette's Headers do)."""
    header = headers.get("authorization")
    if not header:
        raise Problem(
            401,
            "unauthorized",
            "a bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401,
            "unauthorized",
            "use 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        return verifier.verify(token.strip())
    except InvalidToken as exc:
        raise Problem(
            401,
            "invalid_token",
            f"the token was refused: {exc}",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from exc
