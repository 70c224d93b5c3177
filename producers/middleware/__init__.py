"""Request context for web apps: who is calling and from where, set once per request.

    asgi        AuditMiddleware (Starlette, FastAPI)
    wsgi        WSGIAuditMiddleware (Flask, Django)
    proxies     trusted proxies, the client address, request ids

``AuditMiddleware`` (ASGI: Starlette, FastAPI) and ``WSGIAuditMiddleware``
(WSGI: Flask, Django) put an ``AuditContext`` in place for the request:
the authenticated user, the client address, the user agent, a request id
(the incoming ``X-Request-ID`` or a new UUIDv7) and optionally the tenant.

The client address is the TCP peer unless the peer is one of the configured
trusted proxies; only then is ``X-Forwarded-For`` read, right to left,
skipping trusted proxies, and the first untrusted address is the client.
A client can write anything into X-Forwarded-For, so without trusted
proxies the header is ignored. IPv6 scope ids (``fe80::1%eth0``) are dropped:
they name an interface of the host that wrote them and can hold any text.

An incoming request id is kept only when it is 1 to 128 characters of
``[A-Za-z0-9._:@-]``; anything else (escape sequences for the terminal of
whoever reads the trail, newlines, long text) is replaced by a new id, and the
original, escaped and cut, goes into the event's metadata as
``request_id_given`` so it is not lost.
"""
