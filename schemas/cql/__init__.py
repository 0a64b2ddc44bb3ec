"""CQL migrations for the balance store (ScyllaDB in production, Cassandra 5 in tests).

One dialect for both (docs/local-stack.md): no counters, LWT, SAI, MVs or secondary
indexes. Files run in name order; `{keyspace}` is replaced by the configured keyspace and
statements are separated by `;` at the end of a line.
"""
