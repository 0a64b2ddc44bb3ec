"""Why a command was refused. Codes are stable and part of the API's problem+json answers."""

from __future__ import annotations

from enum import IntEnum


class Kind(IntEnum):
    """What kind of refusal; the HTTP layer maps it to a status code."""

    INVALID = 422
    NOT_FOUND = 404
    CONFLICT = 409
    FORBIDDEN = 403


class CommandRejected(Exception):
    def __init__(self, code: str, detail: str, kind: Kind = Kind.INVALID) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.kind = kind
