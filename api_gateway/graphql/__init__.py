"""GraphQL at /graphql (Strawberry) over the same read-model queries as the REST reads."""

from api_gateway.graphql.router import graphql_route

__all__ = ["graphql_route"]
