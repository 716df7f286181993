"""GOSF's microservice example: a ``utils`` service and a gateway that calls it."""
