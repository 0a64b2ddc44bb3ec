-- A raw (unreadable) Kafka message is parked once per projection and place: a consumer that
-- parks, then crashes before committing its offset, parks the same message again on
-- re-delivery (the CQL balance projection commits offsets in Kafka, after its writes).
CREATE UNIQUE INDEX idx_parked_events_raw
  ON parked_events (projection, topic, partition, kafka_offset)
  WHERE event_id IS NULL AND kafka_offset IS NOT NULL;
