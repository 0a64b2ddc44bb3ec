"""JSON Schemas of the event payloads, one file per event type and schema version.

The files under `schemas/json/` are generated from the pydantic models in `domain.events` by
`python -m schemas.events.generate` and committed. A committed version never changes: a change
to an event's payload is a new `schema_version` and a new file, with an upcaster from the
version before it in domain/upcasting.py.
"""
