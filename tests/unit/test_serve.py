"""serve without a stack: tokens, cursors, problem documents, and the access event of every call.

The producer behind the access recorder is replaced at the recorder's own seam
(client_factory) by one that keeps what it is given, or one that never
returns, to see the API refuse calls it cannot record.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sealtrail.config import S3Settings, ServeSettings, Settings
from sealtrail.errors import ConfigError
from sealtrail.evidence.api import create_app
from sealtrail.evidence.api.access import AccessRecorder
from sealtrail.evidence.api.routes import ApiError, decode_cursor, encode_cursor
from sealtrail.evidence.api.tokens import (
    Principal,
    Role,
    TokenStore,
    parse_tokens,
    token_hash,
)


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
