"""`sealtrail serve`: the admin query API over the trail (FastAPI).

tokens.py  bearer tokens and roles (hashes only, in a TOML file)
access.py  every call recorded as an access event through AuditClient
problems.py errors as RFC 9457 problem documents
routes.py  /v1/events, /v1/events/{id}, /v1/exports
app.py     create_app(settings): routes, middleware, metrics, error handlers
"""

from sealtrail.evidence.api.app import create_app

__all__ = ["create_app"]
