"""ASGI and WSGI middleware: per-request context from the peer, trusted proxies, user and request id.

The examples' login endpoints are driven through real Starlette and Flask
apps; their emit is a recorder (our own small interface), the client itself
is covered by the integration tests.
"""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from sealtrail.errors import ConfigError
from sealtrail.producers import current_context
from sealtrail.producers.middleware.asgi import AuditMiddleware
from sealtrail.producers.middleware.proxies import client_ip, trusted_networks
from sealtrail.producers.middleware.wsgi import WSGIAuditMiddleware
from tests.support.recorders import AsyncRecorder, Recorder

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PROXIES = trusted_networks(["10.0.0.0/8", "2001:db8::/32"])


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("198.51.100.7", None, "198.51.100.7"),
        ("198.51.100.7", "203.0.113.9", "198.51.100.7"),  # untrusted peer: the header is a client's claim
        ("10.0.0.5", "203.0.113.9", "203.0.113.9"),
        ("10.0.0.5", "1.2.3.4, 203.0.113.9, 10.1.1.1", "203.0.113.9"),  # first untrusted hop from the right
        ("10.0.0.5", "10.1.1.1, 10.2.2.2", "10.1.1.1"),  # all trusted: the leftmost
        ("10.0.0.5", "garbage, 10.1.1.1", "10.1.1.1"),  # stop at garbage, keep what proxies vouched for
        ("10.0.0.5", "[2001:db8::9]:443, 198.51.100.1:8080", "198.51.100.1"),
        ("::ffff:10.0.0.5", "203.0.113.9", "203.0.113.9"),  # IPv4-mapped peer
        ("testclient", "203.0.113.9", None),
        (None, None, None),
        # L5/M1: a scope id is dropped whatever it holds, and no text longer than an address is parsed
        ("fe80::1%eth0", None, "fe80::1"),
        ("10.0.0.5", "fe80::1%a b<script>", "fe80::1"),
        ("10.0.0.5", "fe80::1%" + "x" * 80, "fe80::1"),
        ("10.0.0.5", "203.0.113.9, " + "0" * 4000 + "::1", "10.0.0.5"),  # too long for an address: garbage
        ("0" * 4000 + "::1", None, None),
    ],
)
def test_client_ip(peer: str | None, xff: str | None, expected: str | None) -> None:
    assert client_ip(peer, xff, PROXIES) == expected


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("req-1", True),
        ("01JD8X5Q.span:7@edge_2", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("abc\x1b]0;owned\x07\x1b[8m", False),  # the review's M8: OSC retitle and SGR conceal for `query`
        ("abc\n", False),  # a trailing newline, which a $-anchored match would let through
        ("id with spaces", False),
        ("ünïcode", False),
        ("", False),
    ],
)
def test_request_ids_outside_the_safe_alphabet_are_replaced(given: str, kept: bool) -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(current_context())

    def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
        seen.append(current_context())
        return [b""]

    header = given.encode("latin-1", "replace") if given.isascii() else given.encode("utf-8")
    scope = {"type": "http", "path": "/", "headers": [(b"x-request-id", header)], "client": ("198.51.100.1", 1)}
    asyncio.run(AuditMiddleware(app)(scope, None, None))
    WSGIAuditMiddleware(wsgi_app)({"REMOTE_ADDR": "198.51.100.2", "HTTP_X_REQUEST_ID": header.decode("latin-1")},
                                  lambda *a: None)
    for context in seen:
        if kept:
            assert (context.request_id, context.request_id_given) == (given, None)
        else:
            assert context.request_id != given and len(context.request_id) == 36
            assert (context.request_id_given is None) == (given == "")
            if context.request_id_given:
                assert context.request_id_given.isprintable() and len(context.request_id_given) <= 256


def test_a_refused_request_id_is_kept_escaped_in_the_event_metadata() -> None:
    from sealtrail.producers import Auditor

    rec = Recorder()
    audit = Auditor(rec, source="web", tenant="acme")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        audit.auth.login(user="alice", method="password")

    scope = {"type": "http", "path": "/", "client": ("198.51.100.1", 1),
             "headers": [(b"x-request-id", b"abc\x1b]0;owned\x07\x1b[8m" + b"z" * 300)]}
    asyncio.run(AuditMiddleware(app)(scope, None, None))
    [event] = rec.events
    assert "\x1b" not in str(event) and event["request_id"] != "abc"
    given = event["metadata"]["request_id_given"]
    assert given.startswith("abc\\x1b]0;owned\\x07\\x1b[8mzzz") and len(given) == 256 and given.endswith("…")


def test_trusted_proxies_are_validated() -> None:
    with pytest.raises(ConfigError, match="not-a-net"):
        trusted_networks(["not-a-net"])
    with pytest.raises(ConfigError, match="list"):
        trusted_networks("10.0.0.0/8")  # type: ignore[arg-type]


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_login_events(events: list[dict[str, Any]]) -> None:
    failed, ok = events
    assert failed["action"] == "auth.login_failed" and failed["outcome"] == "failure"
    assert failed["actor"]["id"] == "alice" and failed["metadata"] == {"reason": "bad_password"}
    assert failed["actor"]["ip"] == "203.0.113.9"  # from X-Forwarded-For: the peer is a trusted proxy
    assert failed["actor"]["user_agent"] == "pytest-agent"
    assert failed["request_id"] == "req-1"
    assert ok["action"] == "auth.login" and ok["actor"]["id"] == "alice" and ok["metadata"] == {"method": "password"}
    assert ok["request_id"] != "req-1" and len(ok["request_id"]) == 36  # a fresh UUIDv7 when none was sent
    assert "correct horse" not in str(events) and "guess" not in str(events)


def test_starlette_example_records_login_and_login_failed() -> None:
    rec = AsyncRecorder()
    app = load_example("starlette_app").create_app(emit=rec, trusted_proxies=("10.0.0.0/8",))

    async def main() -> list[int]:
        transport = httpx.ASGITransport(app=app, client=("10.0.0.5", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            headers = {"user-agent": "pytest-agent", "x-forwarded-for": "203.0.113.9"}
            bad = await http.post("/login", json={"username": "alice", "password": "guess"},
                                  headers={**headers, "x-request-id": "req-1"})
            good = await http.post("/login", json={"username": "alice", "password": "correct horse"}, headers=headers)
            malformed = await http.post("/login", content=b"not json")
            return [bad.status_code, good.status_code, malformed.status_code]

    assert asyncio.run(main()) == [401, 200, 400]
    check_login_events(rec.events)


def test_flask_example_records_login_and_login_failed() -> None:
    rec = Recorder()
    app = load_example("flask_app").create_app(emit=rec, trusted_proxies=("10.0.0.0/8",))
    http = app.test_client()
    env = {"REMOTE_ADDR": "10.0.0.5"}
    headers = {"User-Agent": "pytest-agent", "X-Forwarded-For": "203.0.113.9"}
    bad = http.post("/login", json={"username": "alice", "password": "guess"},
                    headers={**headers, "X-Request-ID": "req-1"}, environ_base=env)
    good = http.post("/login", json={"username": "alice", "password": "correct horse"}, headers=headers, environ_base=env)
    assert (bad.status_code, good.status_code) == (401, 200)
    check_login_events(rec.events)


def test_context_does_not_leak_between_requests_or_after_them() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(current_context())
        await asyncio.sleep(0.01)
        seen.append(current_context())

    middleware = AuditMiddleware(app, user=lambda scope: scope["path"].strip("/"), tenant=lambda scope: "acme")

    async def main() -> None:
        await asyncio.gather(*(
            middleware({"type": "http", "path": f"/u{i}", "headers": [], "client": ("198.51.100.1", 1)}, None, None)
            for i in range(10)
        ))
        await middleware({"type": "lifespan"}, None, None)  # passed through untouched

    asyncio.run(main())
    requests, lifespan = seen[:20], seen[20:]
    assert sorted(c.actor_id for c in requests) == sorted([f"u{i}" for i in range(10)] * 2)
    assert {c.tenant for c in requests} == {"acme"}
    assert [c.actor_id for c in lifespan] == [None, None]
    assert current_context().actor_id is None

    def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
        seen.append(current_context())
        start_response("200 OK", [])
        return [b""]

    WSGIAuditMiddleware(wsgi_app)({"REMOTE_ADDR": "198.51.100.2", "REMOTE_USER": "bob"}, lambda *a: None)
    assert (seen[-1].actor_id, seen[-1].ip) == ("bob", "198.51.100.2")
    assert current_context().actor_id is None
