-- Idempotency-Keys are scoped by role, subject AND pharmacy (issue 9): a chain's branches may
-- share one `sub`, and keyed by `role:sub` alone, one branch was answered with the other's
-- claim. `principal` now holds `role:sub` for a caller without a pharmacy (unchanged) and
-- `role@<pharmacy>:sub` for one with a pharmacy, the pharmacy's '%' and ':' escaped as %25
-- and %3A (infrastructure/auth/tokens.py, Principal.idempotency_scope).
--
-- Existing rows of callers with a pharmacy move to their new scope when the event they point
-- at was written by the same request (same key, same role and sub in its metadata): then the
-- event's actor names the pharmacy that sent it. Any other old row (it answered with an
-- earlier identical request's event, whose actor may be another branch) is left as it was:
-- no lookup finds it any more, and it behaves like an expired key until the purge takes it.
UPDATE idempotency_keys AS k
SET principal = split_part(k.principal, ':', 1) || '@'
    || replace(replace(e.metadata #>> '{actor,pharmacy_id}', '%', '%25'), ':', '%3A')
    || substr(k.principal, strpos(k.principal, ':'))
FROM events AS e
WHERE e.event_id = (convert_from(k.response_body, 'UTF8')::jsonb ->> 'event_id')::uuid
  AND e.metadata ->> 'idempotency_key' = k.key
  AND k.principal = (e.metadata #>> '{actor,role}') || ':' || (e.metadata #>> '{actor,sub}')
  AND coalesce(e.metadata #>> '{actor,pharmacy_id}', '') <> '';

-- `healthpay idempotency purge` deletes answers older than IDEMPOTENCY_RETENTION_DAYS, oldest
-- first, in batches.
CREATE INDEX idx_idempotency_keys_created_at ON idempotency_keys (created_at);
