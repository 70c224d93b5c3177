"""`sealtrail serve`: the admin query API over the trail (FastAPI).

gate.py     the middleware every call passes: token before body, caps, rate limits, its access event
caller.py   who calls: address (X-Forwarded-For, scope ids), user agent, request id, bounded
throttle.py rate limits on calls without a valid token
access.py   every call recorded as an access event through AuditClient (a reserved queue slot per call)
tokens.py   bearer tokens and roles (hashes only, in a TOML file)
problems.py errors as RFC 9457 problem documents
openapi.py  what the generated OpenAPI document leaves out
routes.py   /v1/events, /v1/events/{id}, /v1/exports
metrics.py  Prometheus metrics, on their own loopback listener
app.py      create_app(settings): routes, gate, metrics listener, error handlers
server.py   the uvicorn config: TLS, concurrency cap
"""

from sealtrail.evidence.api.app import create_app

__all__ = ["create_app"]
