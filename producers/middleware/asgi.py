"""ASGI middleware (Starlette, FastAPI): the audit context for each HTTP or WebSocket request.

    app = Starlette(routes=..., middleware=[
        Middleware(AuthenticationMiddleware, backend=...),      # first, so scope["user"] is set
        Middleware(AuditMiddleware, trusted_proxies=["10.0.1.10", "10.0.1.11"], tenant=lambda scope: "acme"),
    ])

Name only the proxies themselves (the load balancer's addresses or its own small subnet): a client inside a
trusted range could write its own X-Forwarded-For.

The user defaults to Starlette's ``scope["user"]`` when it is authenticated
(its ``identity``, else ``display_name``); pass ``user=callable(scope)`` for
anything else. After a login inside the request, ``bind_context(actor_id=...)``
updates the context for the rest of it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from sealtrail.producers.context import AuditContext, reset_context, set_context
from sealtrail.producers.middleware.proxies import client_ip, request_id_from, trusted_networks
from sealtrail.producers.outbound import new_event_id

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


def starlette_user(scope: Scope) -> str | None:
    user = scope.get("user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    for attr in ("identity", "display_name", "username"):
        value = getattr(user, attr, None)
        if isinstance(value, str) and value:
            return value
    return None


class AuditMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        trusted_proxies: Iterable[str] = (),
        user: Callable[[Scope], str | None] = starlette_user,
        tenant: Callable[[Scope], str | None] | None = None,
        request_id_header: str = "x-request-id",
    ) -> None:
        if not callable(app):
            raise TypeError("AuditMiddleware wraps an ASGI application")
        self.app = app
        self.trusted = trusted_networks(trusted_proxies)
        self.user = user
        self.tenant = tenant
        self.request_id_header = request_id_header.lower().encode("latin-1")

    def context_for(self, scope: Scope) -> AuditContext:
        forwarded: list[str] = []
        user_agent = request_id = None
        for name, value in scope.get("headers") or ():
            if name == b"x-forwarded-for":
                forwarded.append(value.decode("latin-1"))
            elif name == b"user-agent":
                user_agent = value.decode("latin-1")[:1024]
            elif name == self.request_id_header:
                request_id = value.decode("latin-1")
        client = scope.get("client")
        peer = client[0] if client else None
        request_id, given = request_id_from(request_id, new_event_id())
        return AuditContext(
            actor_id=self.user(scope),
            ip=client_ip(peer, ",".join(forwarded), self.trusted),
            user_agent=user_agent,
            request_id=request_id,
            request_id_given=given,
            tenant=self.tenant(scope) if self.tenant else None,
        )

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        token = set_context(self.context_for(scope))
        try:
            await self.app(scope, receive, send)
        finally:
            reset_context(token)
