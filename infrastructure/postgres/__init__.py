"""PostgreSQL plumbing shared by the services: connection pools and schema migrations."""
