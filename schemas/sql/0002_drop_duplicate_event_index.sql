-- idx_events_aggregate (from the seed's DDL) indexes exactly what the UNIQUE(aggregate_id,
-- version) constraint's own index already does. Every appended event paid for maintaining
-- both; reads use the unique index either way.
DROP INDEX IF EXISTS idx_events_aggregate;
