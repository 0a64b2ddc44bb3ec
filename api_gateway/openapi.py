"""The public API's one OpenAPI document, served by the gateway at /openapi.json and shown by
its /docs.

The public URL's edge sends POST/DELETE under /api/v1 to the command service and everything
else here, so the gateway documents both sides: its own REST reads and the command service's
writes, as declared in schemas/api/openapi.py (the gateway may not import the command
service). Both services' route tables are tested against those declarations.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from schemas.api.openapi import READS, WRITES, build_openapi

TITLE = "HealthPay Ledger API"
DESCRIPTION = """\
MedCards, prescription claims and member wallets. Every call needs a bearer token (JWT).

* **Writes** (POST/DELETE) are commands: each answers with the event it stored and its
  `position`. An `Idempotency-Key` header makes a retry safe.
* **Reads** (GET) come from read models that trail the writes by a little. To read your own
  write, pass the write's `position` as `minPosition` (or `X-Min-Position`); every read
  answers the position it reflects in `X-Projection-Position`.
* **GraphQL** over the same read models is at `/graphql` (not described here).
* Errors are `application/problem+json` (RFC 7807) with a stable `code`.
"""


def describe(app: FastAPI) -> None:
    """Makes `app.openapi()` (hence /openapi.json and /docs) the whole public API."""

    def openapi() -> dict[str, Any]:
        if not app.openapi_schema:
            app.openapi_schema = build_openapi(
                (*READS, *WRITES), title=TITLE, version=app.version, description=DESCRIPTION
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
