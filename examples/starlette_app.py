"""A Starlette (ASGI) login endpoint that records auth.login and auth.login_failed.

    sealtrail up                                  # the embedded stack
    pip install 'sealtrail[examples]'             # starlette, uvicorn
    python examples/starlette_app.py              # http://127.0.0.1:8000
    curl -s -XPOST localhost:8000/login -d '{"username": "alice", "password": "correct horse"}'
    curl -s -XPOST localhost:8000/login -d '{"username": "alice", "password": "guess"}'
    sealtrail stream & sealtrail sink & sealtrail query --action auth.login_failed

Works the same under FastAPI (``app.add_middleware(AuditMiddleware, ...)``).
The client spools to disk while Kafka is away (``spool=True``), so a broker
outage does not lose a login record.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sealtrail.producers import Auditor, bind_context
from sealtrail.producers.middleware.asgi import AuditMiddleware

SALT = b"example-only"
USERS = {"alice": hashlib.pbkdf2_hmac("sha256", b"correct horse", SALT, 100_000)}


def password_ok(username: str, password: str) -> bool:
    expected = USERS.get(username)
    given = hashlib.pbkdf2_hmac("sha256", password.encode(), SALT, 100_000)
    return expected is not None and hmac.compare_digest(expected, given)


def create_app(emit: Callable[[dict[str, Any]], Awaitable[str]] | None = None,
               trusted_proxies: tuple[str, ...] = ("127.0.0.1",)) -> Starlette:
    """The app; ``emit`` defaults to an AsyncAuditClient on the settings from the environment."""
    client = None
    if emit is None:
        from sealtrail.config import load_settings
        from sealtrail.producers import AsyncAuditClient

        client = AsyncAuditClient(load_settings(), spool=True)
        emit = client.emit
    audit = Auditor(emit, source="example-starlette", tenant="demo")

    async def login(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            username, password = str(body["username"]), str(body["password"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "send {\"username\": ..., \"password\": ...}"}, status_code=400)
        if not password_ok(username, password):
            # the password itself is never part of the event
            await audit.auth.login_failed(user=username, reason="bad_password" if username in USERS else "unknown_user")
            return JSONResponse({"error": "invalid credentials"}, status_code=401)
        bind_context(actor_id=username)  # the rest of this request acts as alice
        await audit.auth.login(method="password")
        return JSONResponse({"user": username})

    @asynccontextmanager
    async def lifespan(_app: Starlette):  # type: ignore[no-untyped-def]
        yield
        if client is not None:
            await client.aclose()  # flush: acknowledged by Kafka or durable in the spool

    return Starlette(
        routes=[Route("/login", login, methods=["POST"])],
        middleware=[Middleware(AuditMiddleware, trusted_proxies=trusted_proxies)],
        lifespan=lifespan,
    )


if __name__ == "__main__":
    try:
        import uvicorn
    except ImportError:
        raise SystemExit("uvicorn is not installed: pip install 'sealtrail[examples]'") from None
    uvicorn.run(create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
