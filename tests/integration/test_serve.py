"""`sealtrail serve` on the real embedded stack: a trail sealed by real workers, the API served by uvicorn.

Every call made here must come back as an access event in the trail's
audit.events topic (read with confluent-kafka), matched by the X-Request-ID
the test sends. Last, schemathesis checks every operation of the published
OpenAPI document against the running server.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from xml.etree import ElementTree

import httpx
import orjson
import pytest
import uvicorn
from sealtrail.config import ServeSettings, Settings
from sealtrail.evidence.api import create_app
from sealtrail.evidence.api.tokens import TokenStore
from sealtrail.kafka import read_to_end
from sealtrail.producers.client import AuditClient
from sealtrail.workload import generate

EVENTS = 450
PARTITIONS = 3
SEED = 71
_spec = importlib.util.spec_from_file_location("serve_trail", Path(__file__).with_name("conftest.py"))
assert _spec is not None and _spec.loader is not None
_trails = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_trails)


class Served(NamedTuple):
    url: str
    settings: Settings
    auditor: str
    admin: str
    events: list[dict[str, Any]]


@pytest.fixture(scope="module")
def served(stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("serve")
    trail = _trails.Trail(stack.settings, tmp, partitions=PARTITIONS)
    events = list(generate(EVENTS, seed=SEED))
    try:
        trail.start("stream")
        trail.start("sink")
        with AuditClient(trail.settings) as client:
            for e in events:
                client.emit(e)
        trail.wait_stored(EVENTS)
    finally:
        trail.stop_all()  # from here on, what reaches audit.events stays there to be read back

    tokens = TokenStore(tmp / "tokens.toml")
    auditor, admin = tokens.add("auditor-1", "auditor"), tokens.add("admin-1", "admin")
    settings = trail.settings.model_copy(update={"serve": ServeSettings(
        tokens_file=tmp / "tokens.toml", export_dir=tmp / "exports", port=0)})
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_config=None, access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield Served(f"http://127.0.0.1:{sock.getsockname()[1]}", settings, auditor, admin, events)
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()
        assert not thread.is_alive(), "the server did not stop (access-event producer still flushing?)"


def call(served: Served, method: str, path: str, token: str | None = None, **kwargs: Any) -> tuple[str, httpx.Response]:
    """One request with a fresh X-Request-ID, which the access event carries as its request_id."""
    request_id = str(uuid.uuid4())
    headers = {"X-Request-ID": request_id, "User-Agent": "serve-test/1"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    response = httpx.request(method, served.url + path, headers=headers, timeout=60, **kwargs)
    return request_id, response


def access_events(served: Served, request_ids: list[str], timeout_s: float = 30.0) -> dict[str, dict[str, Any]]:
    """The access events with these request ids, read back from the trail's audit.events topic."""
    topic = served.settings.kafka.topics.events
    deadline = time.monotonic() + timeout_s
    while True:
        found: dict[str, dict[str, Any]] = {}
        for batch in read_to_end(served.settings, topic, list(range(PARTITIONS))):
            for message in batch:
                event = orjson.loads(message.value())
                if event.get("source") == "sealtrail-serve" and event.get("request_id") in request_ids:
                    found[event["request_id"]] = event
        if len(found) == len(request_ids) or time.monotonic() > deadline:
            missing = set(request_ids) - set(found)
            assert not missing, f"no access event for requests {sorted(missing)}"
            return found
        time.sleep(0.5)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    doc = response.json()
    assert doc["status"] == status and doc["title"]
    return doc


def test_no_or_unknown_token_is_401_and_recorded(served: Served) -> None:
    rid_none, none = call(served, "GET", "/v1/events")
    rid_bad, bad = call(served, "GET", "/v1/events/" + served.events[0]["event_id"], token="not-a-token")
    for response in (none, bad):
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
    recorded = access_events(served, [rid_none, rid_bad])
    for rid, operation in ((rid_none, "trail.search"), (rid_bad, "trail.read")):
        event = recorded[rid]
        assert event["category"] == "access"
        assert event["action"] == "trail.access_denied"
        assert event["outcome"] == "failure"
        assert event["actor"]["id"] == "anonymous"
        assert event["actor"]["ip"] == "127.0.0.1"
        assert event["actor"]["user_agent"] == "serve-test/1"
        assert event["resource"]["type"] == "audit_trail"
        assert event["metadata"]["status"] == 401
        assert event["metadata"]["operation"] == operation
    assert recorded[rid_none]["metadata"]["reason"] == "no bearer token"
    assert recorded[rid_bad]["metadata"]["reason"] == "unknown token"


def test_auditor_may_not_export(served: Served) -> None:
    rid, response = call(served, "POST", "/v1/exports", token=served.auditor,
                         json={"from": "2026-01-01", "to": "2026-01-02"})
    assert_problem(response, 403)
    event = access_events(served, [rid])[rid]
    assert (event["action"], event["outcome"], event["actor"]["id"]) == ("trail.access_denied", "failure", "auditor-1")
    assert event["metadata"]["role"] == "auditor"
    assert event["metadata"]["operation"] == "trail.export"
    assert event["metadata"]["status"] == 403


def test_search_with_filters_returns_exactly_the_matching_events(served: Served) -> None:
    tenant, action = "acme", "auth.login"
    expected = {e["event_id"] for e in served.events if e["tenant"] == tenant and e["action"] == action}
    assert 10 < len(expected) < 200
    rid, response = call(served, "GET", "/v1/events", token=served.auditor,
                         params={"tenant": tenant, "action": action, "category": "auth", "limit": 200})
    assert response.status_code == 200, response.text
    page = response.json()
    assert {e["event_id"] for e in page["events"]} == expected
    assert page["next"] is None and page["count"] == len(expected)
    times = [e["occurred_at"] for e in page["events"]]
    assert times == sorted(times)
    sample = page["events"][0]
    assert isinstance(sample["metadata"], dict) and sample["chain"] and sample["seq"] >= 1

    # a time window and an actor, as `sealtrail query` takes them
    actor = served.events[100]["actor"]["id"]
    since = datetime.fromisoformat(served.events[50]["occurred_at"])
    until = datetime.fromisoformat(served.events[300]["occurred_at"])
    want = {e["event_id"] for e in served.events
            if e["actor"]["id"] == actor and since <= datetime.fromisoformat(e["occurred_at"]) < until}
    _, windowed = call(served, "GET", "/v1/events", token=served.auditor,
                       params={"actor": actor, "since": since.isoformat(), "until": until.isoformat()})
    assert {e["event_id"] for e in windowed.json()["events"]} == want

    event = access_events(served, [rid])[rid]
    assert (event["action"], event["outcome"], event["actor"]["id"]) == ("trail.search", "success", "auditor-1")
    assert event["metadata"]["filters"] == {"tenant": tenant, "action": action, "category": "auth", "limit": "200"}
    assert event["metadata"]["result"] == {"count": len(expected)}


def test_page_size_is_capped_at_200(served: Served) -> None:
    rid_ok, ok = call(served, "GET", "/v1/events", token=served.auditor, params={"limit": 200})
    rid_big, big = call(served, "GET", "/v1/events", token=served.auditor, params={"limit": 201})
    assert ok.status_code == 200 and len(ok.json()["events"]) == 200
    assert ok.json()["next"] and 'rel="next"' in ok.headers["link"]
    doc = assert_problem(big, 422)
    assert doc["errors"][0]["loc"] == ["query", "limit"]
    recorded = access_events(served, [rid_ok, rid_big])
    assert recorded[rid_ok]["outcome"] == "success"
    assert (recorded[rid_big]["action"], recorded[rid_big]["outcome"]) == ("trail.search", "failure")
    assert recorded[rid_big]["metadata"]["status"] == 422


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_pagination_walks_every_event_exactly_once(served: Served, order: str) -> None:
    seen: list[dict[str, Any]] = []
    request_ids = []
    path = f"/v1/events?limit=200&order={order}"
    started = time.perf_counter()
    while path:
        rid, response = call(served, "GET", path, token=served.auditor)
        assert response.status_code == 200, response.text
        request_ids.append(rid)
        page = response.json()
        seen += page["events"]
        path = page["next"]
    print(f"{len(request_ids)} pages of 200 in {(time.perf_counter() - started) * 1000:.0f} ms")
    ids = Counter(e["event_id"] for e in seen)
    assert set(ids) == {e["event_id"] for e in served.events}
    assert max(ids.values()) == 1
    keys = [(e["occurred_at"], e["chain"], e["seq"]) for e in seen]
    assert keys == sorted(keys, reverse=order == "desc")
    assert len(request_ids) == 3  # 450 events in pages of 200
    recorded = access_events(served, request_ids)
    assert all(e["action"] == "trail.search" and e["outcome"] == "success" for e in recorded.values())


def test_offset_pages_and_bad_cursors(served: Served) -> None:
    _, first = call(served, "GET", "/v1/events", token=served.auditor, params={"limit": 5, "offset": 0})
    _, second = call(served, "GET", "/v1/events", token=served.auditor, params={"limit": 5, "offset": 5})
    _, both = call(served, "GET", "/v1/events", token=served.auditor, params={"limit": 10})
    assert [e["event_id"] for e in first.json()["events"] + second.json()["events"]] == \
        [e["event_id"] for e in both.json()["events"]]
    cursor = first.json()["next"].split("cursor=")[1]
    _, other_filters = call(served, "GET", "/v1/events", token=served.auditor,
                            params={"limit": 5, "tenant": "acme", "cursor": cursor})
    assert "other filters" in assert_problem(other_filters, 400)["detail"]
    _, garbage = call(served, "GET", "/v1/events", token=served.auditor, params={"cursor": "xyz"})
    assert_problem(garbage, 400)


def test_read_one_event_and_its_proof(served: Served) -> None:
    wanted = served.events[123]
    rid, response = call(served, "GET", f"/v1/events/{wanted['event_id']}", token=served.auditor)
    assert response.status_code == 200, response.text
    event = response.json()["event"]
    assert (event["event_id"], event["action"], event["tenant"]) == (wanted["event_id"], wanted["action"],
                                                                     wanted["tenant"])
    assert response.json()["proof"] is None
    _, missing = call(served, "GET", f"/v1/events/{uuid.uuid4()}", token=served.auditor)
    assert_problem(missing, 404)
    rid_proof, proof = call(served, "GET", f"/v1/events/{wanted['event_id']}", token=served.auditor,
                            params={"proof": "true"})
    if importlib.util.find_spec("sealtrail.evidence.proof") is None:
        assert "proof" in assert_problem(proof, 501)["detail"]
    else:
        assert proof.status_code == 200, proof.text
        assert isinstance(proof.json()["proof"], dict) and proof.json()["proof"]
    recorded = access_events(served, [rid, rid_proof])
    assert recorded[rid]["action"] == "trail.read" and recorded[rid]["outcome"] == "success"
    assert recorded[rid]["metadata"]["path"] == f"/v1/events/{wanted['event_id']}"
    assert recorded[rid_proof]["metadata"]["filters"] == {"proof": "true"}


def test_admin_exports_a_verified_bundle(served: Served) -> None:
    today = date.today()
    body = {"from": (today - timedelta(days=1)).isoformat(), "to": (today + timedelta(days=1)).isoformat()}
    rid, response = call(served, "POST", "/v1/exports", token=served.admin, json=body)
    if importlib.util.find_spec("sealtrail.evidence.export") is None:
        assert_problem(response, 501)
        return
    assert response.status_code == 201, response.text
    doc = response.json()
    bundle = Path(doc["bundle"])
    assert bundle.is_dir() and bundle.parent == served.settings.serve_export_dir
    assert (bundle / "MANIFEST.json").is_file()
    assert doc["manifest"]["verification"]["ok"] is True
    assert doc["manifest"]["verification"]["events"] == EVENTS
    assert doc["manifest"]["files"] > 0
    _, backwards = call(served, "POST", "/v1/exports", token=served.admin, json={"from": body["to"], "to": body["from"]})
    assert_problem(backwards, 422)
    event = access_events(served, [rid])[rid]
    assert (event["action"], event["outcome"], event["actor"]["id"]) == ("trail.export", "success", "admin-1")
    assert event["metadata"]["result"]["bundle"] == doc["bundle"]


def test_health_and_metrics_need_no_token_and_are_not_recorded(served: Served) -> None:
    rid, health = call(served, "GET", "/healthz")
    assert health.json() == {"status": "ok"}
    _, metrics = call(served, "GET", "/metrics")
    assert 'sealtrail_serve_requests_total{action="trail.access_denied",status="401"}' in metrics.text
    rid_marker, _ = call(served, "GET", "/openapi.json")
    recorded = access_events(served, [rid_marker])
    assert recorded[rid_marker]["action"] == "trail.describe"
    topic_ids = {e.get("request_id") for batch in read_to_end(served.settings, served.settings.kafka.topics.events,
                                                               list(range(PARTITIONS))) for e in map(_json, batch)}
    assert rid not in topic_ids


def _json(message: Any) -> dict[str, Any]:
    return orjson.loads(message.value())


def test_schemathesis_finds_nothing_against_the_published_openapi(served: Served, tmp_path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [str(Path(sys.executable).with_name("schemathesis")), "--no-color", "run", f"{served.url}/openapi.json",
         "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                     "response_schema_conformance",
         "--header", f"Authorization: Bearer {served.auditor}",
         "--max-examples", "15", "--seed", "1", "--workers", "2",
         "--report", "junit", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    (report,) = tmp_path.glob("junit-*.xml")
    suite = ElementTree.parse(report).getroot()
    tested = {case.get("name") for case in suite.iter("testcase")}
    assert {"GET /v1/events", "GET /v1/events/{event_id}", "POST /v1/exports", "GET /healthz",
            "GET /metrics"} <= tested, tested
    assert suite.get("failures") == "0" and suite.get("errors") == "0"
    print(f"schemathesis: {elapsed:.1f}s, {result.stdout.count('passed')} phases passed")
