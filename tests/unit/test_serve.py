"""serve without a stack: tokens, cursors, problem documents, and the access event of every call.

The producer behind the access recorder is replaced at the recorder's own seam
(client_factory) by one that keeps what it is given, or one that never
returns, to see the API refuse calls it cannot record.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from sealtrail.config import ProducerSettings, S3Settings, ServeSettings, Settings
from sealtrail.errors import ConfigError, InvalidEventError
from sealtrail.evidence.api import create_app
from sealtrail.evidence.api.access import AccessRecorder
from sealtrail.evidence.api.routes import ApiError, decode_cursor, encode_cursor
from sealtrail.evidence.api.tokens import Principal, Role, TokenStore, parse_tokens, token_hash
from sealtrail.producers.outbound import encode


class KeptEvents:
    """Stands in for AuditClient: keeps emitted events in memory."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.closed = False

    def emit(self, event: Any) -> str:
        self.events.append(event)
        return str(event.event_id)

    def flush(self, timeout_s: float | None = None) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class StuckProducer(KeptEvents):
    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.entered = threading.Event()

    def emit(self, event: Any) -> str:
        self.entered.set()
        self.release.wait(10)
        return super().emit(event)


def settings(tmp_path: Path, **serve: Any) -> Settings:
    # S3 on a closed port: searches fail fast with 503, which is all these tests need from it
    return Settings(home=tmp_path, s3=S3Settings(endpoint="http://127.0.0.1:9", bucket="b", prefix="p/"),
                    serve=ServeSettings(**{"tokens_file": tmp_path / "tokens.toml", "metrics_port": 0, **serve}))


@pytest.fixture
def api(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = settings(tmp_path)
    store = TokenStore(s.serve_tokens_file)
    tokens = {"auditor": store.add("ann", "auditor"), "admin": store.add("adam", "admin")}
    kept = KeptEvents()
    recorder = AccessRecorder(s, client_factory=lambda: kept)
    with TestClient(create_app(s, recorder=recorder)) as client:
        yield client, tokens, kept
    assert kept.closed


KEY = b"k" * 32


def events_of(kept: KeptEvents, count: int) -> list[Any]:
    """The recorder emits on its own thread: wait for it."""
    for _ in range(200):
        if len(kept.events) >= count:
            break
        threading.Event().wait(0.01)
    return kept.events


# tokens -------------------------------------------------------------------------------------------


def test_token_file_keeps_hashes_only_and_authenticates(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "t.toml")
    secret = store.add("alice", Role.AUDITOR)
    text = (tmp_path / "t.toml").read_text()
    assert secret not in text and token_hash(secret) in text
    assert (tmp_path / "t.toml").stat().st_mode & 0o777 == 0o600
    assert store.authenticate(secret) == Principal("alice", Role.AUDITOR)
    assert store.authenticate(secret + "x") is None
    assert store.authenticate("") is None


def test_token_names_are_unique_and_removal_revokes(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "t.toml")
    first = store.add("alice", "admin")
    with pytest.raises(ConfigError, match="exists"):
        store.add("alice", "auditor")
    bob = store.add("bob", "auditor")
    TokenStore(tmp_path / "t.toml").remove("alice")  # another process (the CLI) edits the file
    assert store.authenticate(first) is None  # the running store notices the change
    assert store.authenticate(bob) == Principal("bob", Role.AUDITOR)


@pytest.mark.parametrize("text, problem", [
    ('"a b" = { role = "admin", sha256 = "' + "0" * 64 + '" }', "token name"),
    ('a = { role = "root", sha256 = "' + "0" * 64 + '" }', "role"),
    ('a = { role = "admin", sha256 = "abc" }', "sha256"),
    ('a = { role = "admin" }', "exactly role and sha256"),
    ("a = [", "not valid TOML"),
])
def test_bad_token_files_name_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_tokens(text)


def test_roles() -> None:
    from sealtrail.evidence.api.tokens import Permission

    auditor, admin = Principal("a", Role.AUDITOR), Principal("b", Role.ADMIN)
    assert auditor.may(Permission.SEARCH) and auditor.may(Permission.PROOF) and not auditor.may(Permission.EXPORT)
    assert all(admin.may(p) for p in Permission)


# cursors ------------------------------------------------------------------------------------------


def test_cursor_round_trips_and_is_bound_to_its_filters_and_the_server_key() -> None:
    row = {"occurred_at": "2026-11-01T00:00:03.250000Z", "chain": "p002", "seq": 17}
    cursor = encode_cursor(row, "f1", KEY)
    assert decode_cursor(cursor, "f1", KEY) == ("2026-11-01T00:00:03.250000+00:00", "p002", 17)
    with pytest.raises(ApiError, match="other filters"):
        decode_cursor(cursor, "f2", KEY)
    for garbage in ("", "!!!", "e30", cursor[:-3], cursor.split(".")[0], "e30.AAAA"):
        with pytest.raises(ApiError) as raised:
            decode_cursor(garbage, "f1", KEY)
        assert raised.value.status == 400
    with pytest.raises(ApiError, match="not a cursor this server made"):
        decode_cursor(cursor, "f1", b"another server's key")


# the app -------------------------------------------------------------------------------------------


def test_401_and_403_are_problems_and_recorded(api) -> None:  # type: ignore[no-untyped-def]
    client, tokens, kept = api
    none = client.get("/v1/events", headers={"X-Request-ID": "r-1"})
    assert none.status_code == 401 and none.headers["www-authenticate"].startswith("Bearer")
    assert none.headers["content-type"] == "application/problem+json"
    assert none.json()["status"] == 401 and none.headers["x-request-id"] == "r-1"
    forbidden = client.post("/v1/exports", json={"from": "2026-01-01", "to": "2026-01-02"},
                            headers={"Authorization": f"Bearer {tokens['auditor']}"})
    assert forbidden.status_code == 403 and forbidden.json()["detail"] == "role auditor may not export"
    first, second = events_of(kept, 2)[:2]
    assert (first.action, first.outcome.value, first.actor.id, first.request_id) == \
        ("trail.access_denied", "failure", "anonymous", "r-1")
    assert first.category.value == "access" and first.source == "sealtrail-serve" and first.tenant == "sealtrail"
    assert (first.resource.type, first.resource.id) == ("audit_trail", "s3://b/p/")
    assert (second.actor.id, second.metadata["operation"], second.metadata["role"]) == \
        ("ann", "trail.export", "auditor")


def test_validation_errors_are_problems_and_recorded_before_the_bucket_is_read(api) -> None:  # type: ignore[no-untyped-def]
    client, tokens, kept = api
    auth = {"Authorization": f"Bearer {tokens['auditor']}"}
    too_big = client.get("/v1/events?limit=201", headers=auth)
    assert too_big.status_code == 422 and too_big.json()["errors"][0]["loc"] == ["query", "limit"]
    assert client.get("/v1/events/not-a-uuid", headers=auth).status_code == 422
    both = client.get("/v1/events?cursor=abc&offset=3", headers=auth)
    assert both.status_code == 400 and "not both" in both.json()["detail"]
    backwards = client.post("/v1/exports", json={"from": "2026-01-02", "to": "2026-01-01"},
                            headers={"Authorization": f"Bearer {tokens['admin']}"})
    assert backwards.status_code == 422
    recorded = events_of(kept, 4)
    assert [(e.action, e.metadata["status"]) for e in recorded[:4]] == [
        ("trail.search", 422), ("trail.read", 422), ("trail.search", 400), ("trail.export", 422)]
    assert recorded[0].metadata["filters"] == {"limit": "201"}


def test_an_unreachable_bucket_is_503_and_recorded(api) -> None:  # type: ignore[no-untyped-def]
    client, tokens, kept = api
    response = client.get("/v1/events?actor=alice", headers={"Authorization": f"Bearer {tokens['auditor']}"})
    assert response.status_code == 503 and response.json()["title"] == "Service unavailable"
    (event,) = events_of(kept, 1)
    assert (event.action, event.outcome.value, event.metadata["status"]) == ("trail.search", "failure", 503)


def test_health_is_open_and_unrecorded_the_rest_is_recorded(api) -> None:  # type: ignore[no-untyped-def]
    client, _, kept = api
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/openapi.json").json()["paths"]["/v1/events"]["get"]["parameters"]
    assert client.get("/nowhere").status_code == 404
    recorded = events_of(kept, 2)
    assert [(e.action, e.metadata["status"]) for e in recorded] == [("trail.describe", 200), ("trail.request", 404)]
    metrics = httpx.get(f"http://127.0.0.1:{client.app.state.metrics_port}/metrics").text
    assert 'sealtrail_serve_requests_total{action="trail.request",status="404"} 1.0' in metrics
    assert "sealtrail_serve_access_events_total 2.0" in metrics


def test_the_openapi_document_states_the_cap_and_the_error_shape(tmp_path: Path) -> None:
    s = settings(tmp_path, max_page=120)
    app = create_app(s, recorder=AccessRecorder(s, client_factory=KeptEvents))
    doc = app.openapi()
    limit = next(p for p in doc["paths"]["/v1/events"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 120
    for path in doc["paths"].values():
        for operation in path.values():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert response["content"] == {"application/problem+json": {"schema": {
                        "$ref": "#/components/schemas/Problem"}}}
    assert "Problem" in doc["components"]["schemas"]
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_calls_are_refused_when_access_events_cannot_be_queued(tmp_path: Path) -> None:
    s = settings(tmp_path, audit_backlog=2)
    stuck = StuckProducer()
    with TestClient(create_app(s, recorder=AccessRecorder(s, client_factory=lambda: stuck))) as client:
        statuses = [client.get("/v1/events").status_code]
        assert stuck.entered.wait(5)  # the first event is in the producer, which does not return
        statuses += [client.get("/v1/events").status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 503, 503]  # two more queued, then the queue is full
        assert client.get("/healthz").status_code == 200  # not recorded, so still answered
        stuck.release.set()
    assert len(stuck.events) == 3


# the security review's attacks, through the app ----------------------------------------------------
# Each test replays a reproduction of ../shared/reviews/security.md against create_app's app (httpx's
# ASGITransport, so concurrent calls and client addresses are real ASGI inputs) and checks it no longer
# gets through.


@asynccontextmanager
async def running(app: Any, client: tuple[str, int] = ("203.0.113.9", 50000)) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan (recorder thread, metrics listener), called as from CLIENT."""
    async with app.router.lifespan_context(app):
        yield calling(app, client)


def calling(app: Any, client: tuple[str, int]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=client), base_url="http://api")


def one_row_after(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The query layer stubbed, as the review did: one row, after SECONDS."""
    import sealtrail.evidence.query as query

    row = {"event_id": "0190c7c4-0000-7000-8000-000000000001", "chain": "p000", "seq": 1,
           "occurred_at": "2026-11-01T00:00:00.000000Z", "action": "auth.login"}

    class Connection:
        def close(self) -> None:
            pass

    def rows(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        time.sleep(seconds)
        return [dict(row)]

    monkeypatch.setattr(query, "open_events", lambda settings: Connection())
    monkeypatch.setattr(query, "query_events", rows)


def with_tokens(s: Settings) -> dict[str, str]:
    store = TokenStore(s.serve_tokens_file)
    return {"auditor": store.add("ann", "auditor"), "admin": store.add("adam", "admin")}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_m1_concurrent_calls_on_a_full_queue_are_refused_not_served_unrecorded(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # review M1 (a): audit_backlog=1, the producer stuck, one call and then four at once
    s = settings(tmp_path, audit_backlog=1)
    tokens = with_tokens(s)
    one_row_after(monkeypatch, 0.3)
    stuck = StuckProducer()
    app = create_app(s, recorder=AccessRecorder(s, client_factory=lambda: stuck))

    async def calls() -> list[httpx.Response]:
        async with running(app) as http:
            first = await http.get("/v1/events", headers=bearer(tokens["auditor"]))
            assert stuck.entered.wait(5)  # its event is in the producer, which does not return
            rest = await asyncio.gather(*[http.get("/v1/events", headers=bearer(tokens["auditor"])) for _ in range(4)])
            stuck.release.set()
            return [first, *rest]

    responses = asyncio.run(calls())
    served = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 503]
    assert len(served) == 2 and len(refused) == 3  # the first, and the one that got the only free place
    assert all("events" not in r.json() and "nothing was served" in r.json()["detail"] for r in refused)
    assert [e.metadata["status"] for e in stuck.events] == [200, 200]  # every served call has its event


def test_m1_an_ipv6_scope_id_in_x_forwarded_for_no_longer_breaks_the_event(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # review M1 (b): trusted_proxies 10.0.0.0/8, client 10.0.0.50, auditor token, XFF fe80::1%xxxx...(80 x)
    s = settings(tmp_path).model_copy(update={"producer": ProducerSettings(trusted_proxies=("10.0.0.0/8",))})
    tokens = with_tokens(s)
    one_row_after(monkeypatch, 0)
    kept = KeptEvents()
    app = create_app(s, recorder=AccessRecorder(s, client_factory=lambda: kept))

    async def call() -> httpx.Response:
        async with running(app, client=("10.0.0.50", 40000)) as http:
            return await http.get("/v1/events", headers={**bearer(tokens["auditor"]),
                                                         "X-Forwarded-For": "fe80::1%" + "x" * 80})

    response = asyncio.run(call())
    assert response.status_code == 200 and response.json()["count"] == 1
    (event,) = events_of(kept, 1)
    assert event.actor.ip == "fe80::1" and event.metadata["status"] == 200


def test_m1_an_event_that_cannot_be_built_turns_the_response_into_503(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(tmp_path)
    tokens = with_tokens(s)
    one_row_after(monkeypatch, 0)
    kept = KeptEvents()
    recorder = AccessRecorder(s, client_factory=lambda: kept)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise InvalidEventError("invalid_value", "actor.ip", "String should have at most 64 characters")

    monkeypatch.setattr(recorder, "build", broken)
    with TestClient(create_app(s, recorder=recorder)) as client:
        response = client.get("/v1/events", headers=bearer(tokens["auditor"]))
        assert response.status_code == 503 and "events" not in response.json()
        assert "mallory" not in response.text and response.headers["x-request-id"]
        assert recorder.backlog == 0  # the reserved place was given back
    assert kept.events == []


class FailingProducer(KeptEvents):
    """Raises what AuditClient can raise besides SealtrailError (a KafkaException, say) for the first event."""

    def emit(self, event: Any) -> str:
        if not self.events and not getattr(self, "failed", False):
            self.failed = True
            raise RuntimeError("KafkaError{code=_MSG_TIMED_OUT}")
        return super().emit(event)


def test_m1_a_producer_error_does_not_end_the_emitting_thread(tmp_path: Path) -> None:
    s = settings(tmp_path)
    failing = FailingProducer()
    recorder = AccessRecorder(s, client_factory=lambda: failing)
    with TestClient(create_app(s, recorder=recorder)) as client:
        assert client.get("/v1/events").status_code == 401
        for _ in range(200):
            if recorder.errors:
                break
            time.sleep(0.01)
        assert recorder.alive
        assert client.get("/v1/events").status_code == 401  # still recorded, so still answered
        assert len(events_of(failing, 1)) == 1 and recorder.errors == 1


class Fatal(BaseException):
    """Something no `except Exception` catches: it ends the emitting thread."""


class DyingProducer(KeptEvents):
    def emit(self, event: Any) -> str:
        raise Fatal


def test_m1_calls_are_refused_once_the_emitting_thread_is_dead(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # review M1 (c): the thread dies; before, calls went on being served while the queue filled silently
    s = settings(tmp_path)
    tokens = with_tokens(s)
    one_row_after(monkeypatch, 0)
    monkeypatch.setattr(threading, "excepthook", lambda args: None)
    recorder = AccessRecorder(s, client_factory=DyingProducer)
    with TestClient(create_app(s, recorder=recorder)) as client:
        client.get("/v1/events", headers=bearer(tokens["auditor"]))
        for _ in range(200):
            if not recorder.alive:
                break
            time.sleep(0.01)
        assert not recorder.alive
        response = client.get("/v1/events", headers=bearer(tokens["auditor"]))
        assert response.status_code == 503 and "events" not in response.json()
        metrics = httpx.get(f"http://127.0.0.1:{client.app.state.metrics_port}/metrics").text
        assert "sealtrail_serve_access_emitter_up 0.0" in metrics


class CountedBody:
    """A request body of COUNT chunks of SIZE bytes, made only when the server asks for the next one."""

    def __init__(self, count: int, size: int) -> None:
        self.count, self.size, self.pulled = count, size, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.count):
            self.pulled += 1
            yield b"[" * self.size


def test_m5_no_body_is_read_before_the_token_is_known(tmp_path: Path) -> None:
    # review M5: a 400 MiB POST without a token was read and parsed (1.49 GB RSS) before its 401
    s = settings(tmp_path)
    tokens = with_tokens(s)
    kept = KeptEvents()
    app = create_app(s, recorder=AccessRecorder(s, client_factory=lambda: kept))
    anonymous, unknown = CountedBody(400, 1 << 20), CountedBody(400, 1 << 20)

    async def calls() -> list[httpx.Response]:
        async with running(app) as http:
            return [await http.post("/v1/exports", content=anonymous, headers={"content-type": "application/json"}),
                    await http.post("/v1/exports", content=unknown,
                                    headers={"content-type": "application/json", **bearer("not-" + tokens["admin"])})]

    none, bad = asyncio.run(calls())
    assert (none.status_code, bad.status_code) == (401, 401)
    assert (anonymous.pulled, unknown.pulled) == (0, 0)  # not one chunk asked for
    assert [e.metadata["operation"] for e in events_of(kept, 2)] == ["trail.export", "trail.export"]


def test_m5_bodies_above_the_cap_get_413_before_they_are_parsed(tmp_path: Path) -> None:
    s = settings(tmp_path, max_body_bytes=4096)
    tokens = with_tokens(s)
    kept = KeptEvents()
    app = create_app(s, recorder=AccessRecorder(s, client_factory=lambda: kept))
    chunked = CountedBody(400, 1 << 10)

    async def calls() -> list[httpx.Response]:
        async with running(app) as http:
            declared = await http.post("/v1/exports", content=b"{" + b" " * 5000 + b"}",
                                       headers={"content-type": "application/json", **bearer(tokens["admin"])})
            streamed = await http.post("/v1/exports", content=chunked,
                                       headers={"content-type": "application/json", **bearer(tokens["admin"])})
            small = await http.post("/v1/exports", json={"from": "2026-01-02", "to": "2026-01-01"},
                                    headers=bearer(tokens["admin"]))
            return [declared, streamed, small]

    declared, streamed, small = asyncio.run(calls())
    assert declared.status_code == 413 and declared.headers["content-type"] == "application/problem+json"
    assert "4096 bytes" in declared.json()["detail"]
    assert streamed.status_code == 413 and chunked.pulled <= 5  # stopped just past 4 KiB
    assert small.status_code == 422  # under the cap, the body reaches the route as before
    recorded = events_of(kept, 3)
    assert [(e.actor.id, e.metadata["status"]) for e in recorded] == [("adam", 413), ("adam", 413), ("adam", 422)]
    assert recorded[0].metadata["reason"] == "body too large"


def forged_cursor() -> str:
    """The review's L2 cursor: its time overflows once converted to UTC, its fingerprint recomputed by anyone."""
    filters = {"actor": None, "action": None, "resource_type": None, "resource_id": None, "tenant": None,
               "category": None, "since": None, "until": None, "order": "asc"}
    made_for = hashlib.sha256(orjson.dumps(filters, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    doc = {"t": "0001-01-01T00:00:00+14:00", "c": "p000", "s": 1, "f": made_for}
    return base64.urlsafe_b64encode(orjson.dumps(doc)).decode().rstrip("=")


def test_l2_a_forged_cursor_is_400_not_500(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(tmp_path, cursor_secret="shared-by-the-servers")
    tokens = with_tokens(s)
    one_row_after(monkeypatch, 0)
    with TestClient(create_app(s, recorder=AccessRecorder(s, client_factory=KeptEvents))) as client:
        forged = client.get("/v1/events", params={"cursor": forged_cursor()}, headers=bearer(tokens["auditor"]))
        assert forged.status_code == 400 and "not a cursor this server made" in forged.json()["detail"]
        # the same time in a cursor with a valid MAC (a leaked secret): still 400, naming the time
        fingerprint = forged_cursor()
        doc = orjson.loads(base64.urlsafe_b64decode(fingerprint + "=" * (-len(fingerprint) % 4)))
        signed = encode_cursor({"occurred_at": doc["t"], "chain": "p000", "seq": 1}, doc["f"],
                               b"shared-by-the-servers")
        overflow = client.get("/v1/events", params={"cursor": signed}, headers=bearer(tokens["auditor"]))
        assert overflow.status_code == 400 and "time" in overflow.json()["detail"]
        page = client.get("/v1/events", params={"limit": 1}, headers=bearer(tokens["auditor"])).json()
        assert page["count"] == 1


def test_l2_the_openapi_document_lists_what_the_server_answers(tmp_path: Path) -> None:
    s = settings(tmp_path)
    doc = create_app(s, recorder=AccessRecorder(s, client_factory=KeptEvents)).openapi()
    operations = {(path, method): op for path, item in doc["paths"].items() for method, op in item.items()}
    assert ("/openapi.json", "get") in operations and ("/docs", "get") in operations
    for (path, _), op in operations.items():
        responses = op["responses"]
        assert "500" in responses, path
        if path != "/healthz":
            assert {"429", "503"} <= set(responses), path
            assert all("X-Request-ID" in r["headers"] for r in responses.values()), path
            assert any(p["name"] == "X-Request-ID" and p["in"] == "header" for p in op["parameters"]), path
        if "401" in responses:
            assert "WWW-Authenticate" in responses["401"]["headers"]
        if "429" in responses:
            assert "Retry-After" in responses["429"]["headers"]
    assert "413" in operations[("/v1/exports", "post")]["responses"]
    assert "Link" in operations[("/v1/events", "get")]["responses"]["200"]["headers"]
    assert ("/metrics", "get") not in operations  # on its own listener now (L7)


def test_l4_calls_without_a_token_are_recorded_in_short_form(tmp_path: Path) -> None:
    # review L4: GET /v1/<2000 x "z">?k0=AAA…&…&k39=AAA… with a 5 KB user agent and no token: an 11,062-byte event
    s = settings(tmp_path)
    kept = KeptEvents()
    app = create_app(s, recorder=AccessRecorder(s, client_factory=lambda: kept))
    path = "/v1/" + "z" * 2000
    query = "&".join(f"k{i}=" + "A" * 256 for i in range(40))

    async def call() -> httpx.Response:
        async with running(app) as http:
            return await http.get(f"{path}?{query}", headers={"User-Agent": "U" * 5000,
                                                               "X-Request-ID": "\x1b[2Kintact"})

    assert asyncio.run(call()).status_code == 404
    (event,) = events_of(kept, 1)
    wire = encode(event)
    assert len(wire) < 1200, len(wire)
    assert b"AAAA" not in wire and b"\x1b" not in wire and b"UUUU" * 40 not in wire
    assert (event.actor.id, event.action) == ("anonymous", "trail.request")
    assert event.metadata["path_sha256"] == hashlib.sha256(path.encode()).hexdigest()
    assert event.metadata["query_sha256"] == hashlib.sha256(query.encode()).hexdigest()
    assert len(event.metadata["path"]) == 128 and len(event.actor.user_agent) == 128
    assert event.request_id != "\x1b[2Kintact" and event.metadata["request_id_replaced_sha256"]


def test_l4_calls_without_a_token_are_rate_limited_and_a_flood_costs_one_event_per_window(tmp_path: Path) -> None:
    s = settings(tmp_path, anonymous_rate_limit="3/minute", anonymous_rate_limit_total="5/minute")
    tokens = with_tokens(s)
    kept = KeptEvents()
    app = create_app(s, recorder=AccessRecorder(s, client_factory=lambda: kept))

    async def calls() -> dict[str, list[httpx.Response]]:
        async with running(app, client=("203.0.113.9", 1)) as one:
            two = calling(app, ("2001:db8::1", 2))
            out = {"flood": [await one.get("/openapi.json") for _ in range(10)]}
            out["another address"] = [await two.get("/openapi.json") for _ in range(3)]
            out["with token"] = [await one.get("/openapi.json", headers=bearer(tokens["auditor"]))]
            return out

    got = asyncio.run(calls())
    assert [r.status_code for r in got["flood"]] == [200] * 3 + [429] * 7
    refused = got["flood"][3]
    assert refused.headers["content-type"] == "application/problem+json" and int(refused.headers["retry-after"]) >= 1
    # the other address had its own 3, until the limit for all calls without a token (5) was reached
    assert [r.status_code for r in got["another address"]] == [200, 200, 429]
    assert got["with token"][0].status_code == 200  # callers with a valid token are never limited
    recorded = events_of(kept, 7)
    actions = Counter(e.action for e in recorded)
    assert actions == {"trail.describe": 6, "trail.rate_limited": 2}, actions  # 3 + 2 + the token's; 2 windows
    limited = [e for e in recorded if e.action == "trail.rate_limited"]
    assert [e.metadata["result"]["limit"] for e in limited] == ["per address: 3 per 1 minute",
                                                              "per all: 5 per 1 minute"]
    assert all(e.metadata["status"] == 429 and e.outcome.value == "failure" for e in limited)


def test_l4_rate_limits_are_checked_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="serve.anonymous_rate_limit"):
        create_app(settings(tmp_path, anonymous_rate_limit="lots"), recorder=AccessRecorder(settings(tmp_path)))
    assert create_app(settings(tmp_path, anonymous_rate_limit="", anonymous_rate_limit_total=""),
                      recorder=AccessRecorder(settings(tmp_path), client_factory=KeptEvents))


def test_l5_a_client_behind_the_proxy_cannot_name_its_own_address(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    # review L5: trusted 10.0.0.0/8, internal client 10.0.0.50 behind the proxy 10.0.0.1, "6.6.6.6, 10.0.0.50"
    base = settings(tmp_path).model_copy(update={"producer": ProducerSettings(trusted_proxies=("10.0.0.0/8",))})
    tokens = with_tokens(base)
    seen = {}
    for hops in (0, 1):
        s = base.model_copy(update={"serve": base.serve.model_copy(update={"proxy_hops": hops})})
        kept = KeptEvents()
        with caplog.at_level(logging.WARNING, "sealtrail.serve"):
            caplog.clear()
            app = create_app(s, recorder=AccessRecorder(s, client_factory=lambda kept=kept: kept))
            warned = "10.0.0.0/8" in caplog.text

        async def call(app: Any = app) -> None:
            async with running(app, client=("10.0.0.1", 443)) as http:
                await http.get("/openapi.json", headers={**bearer(tokens["auditor"]),
                                                         "X-Forwarded-For": "6.6.6.6, 10.0.0.50"})

        asyncio.run(call())
        seen[hops] = (events_of(kept, 1)[0].actor.ip, warned)
    assert seen[0] == ("6.6.6.6", True)  # reading right to left: the operator is warned about the broad range
    assert seen[1] == ("10.0.0.50", False)  # one proxy, one hop: what the proxy appended, whatever came before


def test_l7_a_broken_tokens_file_is_503_for_callers_and_an_error_in_the_log(tmp_path: Path,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    # review L7: with a broken tokens.toml, any bearer got 400 {"detail": "<server path>/tokens.toml: token 'ann': ..."}
    s = settings(tmp_path)
    tokens = with_tokens(s)
    kept = KeptEvents()
    with TestClient(create_app(s, recorder=AccessRecorder(s, client_factory=lambda: kept))) as client:
        s.serve_tokens_file.write_text('ann = { role = "auditor", sha256 = "abc" }\n')
        with caplog.at_level(logging.ERROR, "sealtrail.serve"):
            response = client.get("/v1/events", headers=bearer(tokens["auditor"]))
        assert response.status_code == 503
        assert str(tmp_path) not in response.text and "tokens.toml" not in response.text
        assert "sha256" not in response.text and "server log" in response.json()["detail"]
        assert f"{s.serve_tokens_file}: token 'ann': sha256 must be 64 lower-case hex digits" in caplog.text
        (event,) = events_of(kept, 1)
        assert (event.actor.id, event.metadata["status"], event.metadata["reason"]) == \
            ("anonymous", 503, "token store unavailable")


def test_l7_metrics_are_served_on_loopback_only_not_on_the_api(tmp_path: Path) -> None:
    s = settings(tmp_path)
    with TestClient(create_app(s, recorder=AccessRecorder(s, client_factory=KeptEvents))) as client:
        assert client.get("/metrics").status_code == 404  # what the API's own listener says, to anyone
        port = client.app.state.metrics_port
        assert "sealtrail_serve_requests_total" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
        with socket.create_connection(("127.0.0.1", port)) as conn:
            assert conn.getsockname()[0] == "127.0.0.1"
    off = settings(tmp_path, metrics=False)
    with TestClient(create_app(off, recorder=AccessRecorder(off, client_factory=KeptEvents))) as client:
        assert client.app.state.metrics_port is None


def test_l7_tls_needs_both_files(tmp_path: Path) -> None:
    from sealtrail.evidence.api.server import tls_files

    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(ConfigError, match="serve.tls_key"):
        tls_files(settings(tmp_path, tls_cert=cert))
    with pytest.raises(ConfigError, match="no such file"):
        tls_files(settings(tmp_path, tls_cert=cert, tls_key=tmp_path / "missing.pem"))
    assert tls_files(settings(tmp_path)) is None
    from sealtrail.evidence.api.server import uvicorn_config

    garbage = settings(tmp_path, tls_cert=cert, tls_key=cert)
    with pytest.raises(ConfigError, match="serve.tls_cert: cannot use"):  # a start error, not a traceback
        uvicorn_config(create_app(garbage, recorder=AccessRecorder(garbage, client_factory=KeptEvents)), garbage)


def test_an_export_that_fails_leaves_no_half_bundle_behind(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The bucket is unreachable: the caller gets 503 and serve.export_dir holds no partial folder."""
    client, tokens, kept = api
    response = client.post("/v1/exports", json={"from": "2026-01-01", "to": "2026-01-02"},
                           headers={"Authorization": f"Bearer {tokens['admin']}"})
    assert response.status_code == 503, response.text
    root = settings(tmp_path).serve_export_dir
    assert not root.exists() or list(root.iterdir()) == [], list(root.iterdir())
    (event,) = events_of(kept, 1)
    assert (event.action, event.metadata["status"]) == ("trail.export", 503)


def test_events_queued_when_the_emitting_thread_dies_are_emitted_at_close(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The first producer kills its thread on the first event; that event is emitted by a fresh one at close."""
    s = settings(tmp_path)
    tokens = with_tokens(s)
    one_row_after(monkeypatch, 0)
    monkeypatch.setattr(threading, "excepthook", lambda args: None)
    made: list[KeptEvents] = []

    def factory() -> KeptEvents:
        made.append(DyingProducer() if not made else KeptEvents())
        return made[-1]

    recorder = AccessRecorder(s, client_factory=factory)
    with TestClient(create_app(s, recorder=recorder)) as client:
        client.get("/v1/events", headers=bearer(tokens["auditor"]))
        for _ in range(200):
            if not recorder.alive:
                break
            time.sleep(0.01)
        assert not recorder.alive
    assert len(made) == 2 and [e.action for e in made[1].events] == ["trail.search"]
    assert made[1].closed and recorder.stranded == []
