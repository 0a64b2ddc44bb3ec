"""PostgreSQL read models and the projector that builds them from recorded events.

The consumer loop's whole interface:

    async with conn.transaction():
        result = await apply_or_park(conn, events, locate=...)   # or apply() + park()
        await save_offsets(conn, ...)   # projection_service/offsets.py

`tables=SHADOW` makes the same code build the `__shadow` twins (projection_service/rebuild.py).
"""

from projection_service.read_models.decoding import PoisonEventError
from projection_service.read_models.parking import (
    DEFAULT_PROJECTION,
    KafkaLocation,
    apply_or_park,
    park,
    park_raw,
)
from projection_service.read_models.projector import ApplyResult, apply
from projection_service.read_models.tables import LIVE, PROJECTED_TABLES, SHADOW, Tables

__all__ = [
    "DEFAULT_PROJECTION",
    "LIVE",
    "PROJECTED_TABLES",
    "SHADOW",
    "ApplyResult",
    "KafkaLocation",
    "PoisonEventError",
    "Tables",
    "apply",
    "apply_or_park",
    "park",
    "park_raw",
]
