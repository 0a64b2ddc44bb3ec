"""The CQL balance store: session factory and migration runner (ScyllaDB / Cassandra)."""
