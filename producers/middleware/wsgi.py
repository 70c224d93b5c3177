"""WSGI middleware (Flask, Django): the audit context for each request.

    app.wsgi_app = WSGIAuditMiddleware(app.wsgi_app, trusted_proxies=["10.0.1.10"])  # the proxy itself, never a range clients live in

The user defaults to ``REMOTE_USER`` (set by the server or an auth
middleware); pass ``user=callable(environ)`` for anything else, or call
``bind_context(actor_id=...)`` inside the view once the user is known. The
context lives while the application callable runs, which covers the view;
a streamed response body produced after it returned runs without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sealtrail.producers.context import AuditContext, reset_context, set_context
from sealtrail.producers.middleware.proxies import client_ip, request_id_from, trusted_networks
from sealtrail.producers.outbound import new_event_id

Environ = dict[str, Any]


def remote_user(environ: Environ) -> str | None:
    return environ.get("REMOTE_USER") or None


class WSGIAuditMiddleware:
    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        *,
        trusted_proxies: Iterable[str] = (),
        user: Callable[[Environ], str | None] = remote_user,
        tenant: Callable[[Environ], str | None] | None = None,
        request_id_header: str = "X-Request-ID",
    ) -> None:
        if not callable(app):
            raise TypeError("WSGIAuditMiddleware wraps a WSGI application")
        self.app = app
        self.trusted = trusted_networks(trusted_proxies)
        self.user = user
        self.tenant = tenant
        self.request_id_key = "HTTP_" + request_id_header.upper().replace("-", "_")

    def context_for(self, environ: Environ) -> AuditContext:
        request_id, given = request_id_from(environ.get(self.request_id_key), new_event_id())
        return AuditContext(
            actor_id=self.user(environ),
            ip=client_ip(environ.get("REMOTE_ADDR"), environ.get("HTTP_X_FORWARDED_FOR"), self.trusted),
            user_agent=(environ.get("HTTP_USER_AGENT") or None) and environ["HTTP_USER_AGENT"][:1024],
            request_id=request_id,
            request_id_given=given,
            tenant=self.tenant(environ) if self.tenant else None,
        )

    def __call__(self, environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        token = set_context(self.context_for(environ))
        try:
            return self.app(environ, start_response)
        finally:
            reset_context(token)
