"""The HTTP gateway: the REST API under `/api/v1`, auth, OpenAPI and the live event stream.

It owns no domain state; every answer comes from a service over NATS.
"""
