"""The one JSON encoding both stores use, so the in-memory twin accepts and returns exactly
what PostgreSQL's jsonb would."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson


def _default(value: object) -> object:
    # orjson serialises dict natively but not other Mappings (MappingProxyType, frozen maps).
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON-ready (money and dates go as strings)")


def dumps(value: object) -> bytes:
    return orjson.dumps(value, default=_default)


def loads(document: bytes | str) -> Any:
    return orjson.loads(document)
