"""report: the SOC 2 page's facts over a trail in a bundle folder, its charts, and the page itself.

The trail is built the way the pipeline builds it (validate -> seal_batch ->
Parquet, digests, public key, lock sidecars), with known counts: 7 failed
logins for acme and 2 for globex inside the window plus two just outside it,
3 role grants and a privilege escalation, 3 configuration changes, 2 exports
of the audit trail, a source that goes quiet for 3 hours, and two access
reviews (one before the window) whose difference is 3 changes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import date, datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sealtrail.chain import Accepted, ChainHead, seal_batch
from sealtrail.config import RetentionSettings, S3Settings, Settings
from sealtrail.digest import ListedObject, build_digest, head_of
from sealtrail.errors import ConfigError
from sealtrail.evidence.report import charts
from sealtrail.evidence.report.build import build_report
from sealtrail.evidence.report.facts import Review, Window, day_series, find_gaps, latest_pairs, window_of
from sealtrail.evidence.report.page import render_html
from sealtrail.layout import data_key, public_key_key
from sealtrail.objects import to_parquet
from sealtrail.producers.access_review import Principal, publish_review
from sealtrail.record import GENESIS
from sealtrail.store import sha256_b64
from tests.support.builders import columns_of
from tests.support.signers import new_signer
from tests.support.stores import put_file

PREFIX = "trail/"
SETTINGS = Settings(s3=S3Settings(prefix=PREFIX), retention=RetentionSettings(days=30))
WINDOW = Window(date(2026, 11, 2), date(2026, 11, 5))
SEALED_AT = "2026-11-06T08:00:00.000000Z"


def at(text: str) -> str:
    return text if text.endswith("Z") else text + "Z"


def ev(action: str, when: str, *, category: str | None = None, outcome: str = "success", actor: str = "alice",
       ip: str | None = None, source: str = "web", tenant: str = "acme", resource: tuple[str, str] | None = None,
       **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "occurred_at": at(when),
        "category": category or {"data": "change", "code": "change"}.get(action.split(".")[0], action.split(".")[0]),
        "action": action,
        "outcome": outcome,
        "actor": {"id": actor, **({"ip": ip} if ip else {})},
        "tenant": tenant,
        "source": source,
        **extra,
    }
    if resource:
        event["resource"] = {"type": resource[0], "id": resource[1]}
    return event


class Collect:
    """The emit/flush seam publish_review writes to, as a list."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def flush(self) -> None:
        pass


def review_events(home: Path) -> list[dict[str, Any]]:
    client = Collect()
    first = [Principal("alice", "user", ("admins",), ("AdministratorAccess",), True),
             Principal("bob", "user", ("dev",), (), True)]
    second = [Principal("alice", "user", ("admins",), ("AdministratorAccess",), True),
              Principal("bob", "user", ("admins", "dev"), (), False),
              Principal("carol", "user", ("dev",), (), True)]
    publish_review(client, first, source="file:idp.csv", home=home, tenant="acme", reviewer="rita",
                   taken_at=datetime(2026, 10, 20, 9, tzinfo=timezone.utc))
    publish_review(client, second, source="file:idp.csv", home=home, tenant="acme", reviewer="rita",
                   taken_at=datetime(2026, 11, 4, 9, tzinfo=timezone.utc))
    return client.events


def trail_events(home: Path) -> list[dict[str, Any]]:
    events = []
    # "web" logs in every hour of 2 and 3 November, except 10:00-12:59 on the 3rd: one 3-hour gap
    start = datetime(2026, 11, 2, tzinfo=timezone.utc)
    for h in range(48):
        if 34 <= h <= 36:
            continue
        events.append(ev("auth.login", (start + timedelta(hours=h, minutes=5)).strftime("%Y-%m-%dT%H:%M:%S"),
                         ip="198.51.100.7"))
    for i in range(5):
        events.append(ev("auth.login_failed", f"2026-11-04T01:0{i}:00", outcome="failure", actor="mallory",
                         ip="203.0.113.9", source="sso", metadata={"reason": "bad_password"}))
    for i in range(2):
        events.append(ev("auth.login_failed", f"2026-11-05T02:0{i}:00", outcome="failure", actor="bob",
                         ip="198.51.100.20", source="sso"))
    for i in range(2):
        events.append(ev("auth.login_failed", f"2026-11-04T03:0{i}:00", outcome="failure", actor="eve",
                         source="sso", tenant="globex"))
    events.append(ev("auth.login_failed", "2026-11-01T23:59:59.999999", outcome="failure", source="sso"))  # before
    events.append(ev("auth.login_failed", "2026-11-06T00:00:00", outcome="failure", source="sso"))  # after
    for i, user in enumerate(("bob", "carol", "dave")):
        events.append(ev("admin.role_granted", f"2026-11-0{4 + i % 2}T10:0{i}:00", actor="root", source="console",
                         resource=("user", user), metadata={"role": "admin"}))
    events.append(ev("security.privilege_escalation", "2026-11-05T11:00:00", actor="root", source="console",
                     resource=("user", "dave"), metadata={"granted": "sudo"}))
    events.append(ev("admin.config_changed", "2026-11-03T15:00:00", actor="root", source="console",
                     resource=("config", "session_timeout"), before={"value": 30}, after={"value": 600}))
    events.append(ev("admin.config_changed", "2026-11-04T15:00:00", actor="root", source="console",
                     resource=("config", "mfa_required"), before={"value": True}, after={"value": False}))
    events.append(ev("code.configuration_change", "2026-11-04T16:00:00", actor="dev1", source="git:infra",
                     resource=("commit", "abc123")))
    for i in range(2):
        events.append(ev("access.export", f"2026-11-05T09:0{i}:00", actor="auditor", source="console",
                         resource=("audit_trail", "2026-10"), metadata={"rows": 100}))
    events.append(ev("access.export", "2026-11-05T09:30:00", actor="alice", source="console",
                     resource=("invoice", "inv-1")))
    for i in range(4):
        events.append(ev("data.update", f"2026-11-03T0{i}:30:00", actor="app", source="postgres:shop",
                         resource=("public.orders", f"o-{i}"), before={"s": 1}, after={"s": 2}))
    for i in range(2):
        events.append(ev("data.insert", f"2026-11-03T0{i}:40:00", actor="app", source="postgres:shop",
                         resource=("public.users", f"u-{i}"), after={"n": i}))
    for event in review_events(home):
        event = dict(event)
        event["occurred_at"] = event["occurred_at"].isoformat()
        events.append(event)
    return events


def write_trail(root: Path, events: list[dict[str, Any]]) -> None:
    """Two chains, one object and one digest each, locked, with the public key: a bundle verify accepts."""
    signer = new_signer()
    heads = {0: ChainHead("p000"), 1: ChainHead("p001")}
    batch = []
    for i, event in enumerate(events):
        batch.append(Accepted(i % 2, i // 2, columns_of(event)))
    sealed = seal_batch(heads, batch, signer, SEALED_AT).sealed
    for chain in ("p000", "p001"):
        records = [r for r in sealed if r.chain == chain]
        if not records:
            continue
        key = data_key(PREFIX, SEALED_AT[:10], chain, records[0].seq, records[-1].seq)
        body = to_parquet(records, GENESIS)  # the first object of a chain links to the genesis hash
        listed = [ListedObject(key, "1", sha256_b64(body), records[0].seq, records[-1].seq, len(body))]
        digest_key, digest = build_digest(PREFIX, chain, listed, head_of(records[-1]), None, signer,
                                          "2026-11-06T08:00:05.000000Z")
        put_file(root, key, body)
        put_file(root, digest_key, digest)
    put_file(root, public_key_key(PREFIX, signer.key_id), signer.public_pem)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bundle")
    write_trail(root, trail_events(tmp_path_factory.mktemp("home")))
    return root


@pytest.fixture(scope="module")
def facts(bundle: Path):  # type: ignore[no-untyped-def]
    return build_report(SETTINGS, WINDOW, bundle=bundle)


def control(facts, key: str):  # type: ignore[no-untyped-def]
    return next(c for c in facts.controls if c.control.key == key)


# ---------------------------------------------------------------------------
# pure parts


def test_window_is_whole_utc_days_last_included() -> None:
    w = window_of("2026-11-02", "2026-11-05")
    assert w.start == datetime(2026, 11, 2, tzinfo=timezone.utc)
    assert w.end == datetime(2026, 11, 6, tzinfo=timezone.utc)
    assert len(w.days) == 4 and w.gap_unit == "hour" and w.bucket_count() == 96
    assert window_of("2026-01-01", "2026-03-31").gap_unit == "day"


@pytest.mark.parametrize(("first", "last", "flag"), [("2026-13-01", "2026-12-01", "--from"),
                                                     ("2026-11-01", "yesterday", "--to"),
                                                     ("2026-11-05", "2026-11-01", "--to")])
def test_bad_windows_are_config_errors(first: str, last: str, flag: str) -> None:
    with pytest.raises(ConfigError) as e:
        window_of(first, last)
    assert e.value.setting == flag


def test_gaps_are_runs_between_first_and_last_activity() -> None:
    w = Window(date(2026, 11, 2), date(2026, 11, 2))
    gaps = find_gaps("web", [9, 0, 1, 5, 6, 6], w)
    assert [(g.start.hour, g.end.hour, g.buckets) for g in gaps] == [(2, 5, 3), (7, 9, 2)]
    assert find_gaps("web", [3, 4, 5], w) == []
    assert find_gaps("web", [], w) == []


def test_day_series_fills_missing_days_and_ignores_others() -> None:
    days = WINDOW.days
    rows = [{"day": date(2026, 11, 3), "category": "auth", "n": 4}, {"day": date(2026, 11, 5), "category": "admin", "n": 1},
            {"day": date(2026, 11, 9), "category": "auth", "n": 99}]
    assert day_series(rows, days, group="category") == {"auth": [0, 4, 0, 0], "admin": [0, 0, 0, 1]}


def test_latest_pairs_per_source() -> None:
    t = datetime(2026, 11, 1, tzinfo=timezone.utc)
    found = [Review("a", "s2", t + timedelta(days=2), "r", 3), Review("a", "s1", t, "r", 2),
             Review("b", "s9", t, "r", 1), Review("a", "s3", t + timedelta(days=5), "r", 4)]
    pairs = latest_pairs(found)
    assert [(p[0].snapshot_id, p[1].snapshot_id if p[1] else None) for p in pairs] == [("s3", "s2"), ("s9", None)]


def test_nice_ticks_cover_the_peak() -> None:
    for top in (1, 3, 7, 10, 99, 1234, 99_999):
        ticks = charts.nice_ticks(top)
        assert ticks[0] == 0 and ticks[-1] >= top and len(ticks) <= 6
        assert len({b - a for a, b in zip(ticks, ticks[1:])}) == 1
    assert charts.nice_ticks(0) == [0, 1]


def test_chart_draws_one_rect_per_nonzero_cell_and_escapes_names() -> None:
    svg = str(charts.stacked_bars(WINDOW.days, {"auth": [1, 0, 2, 0], "<script>x": [0, 3, 0, 0]}, label="a & b"))
    assert svg.count("data-value=") == 3
    assert "<script>" not in svg and "&lt;script&gt;" in svg and 'aria-label="a &amp; b"' in svg
    empty = str(charts.single_bars(WINDOW.days, [0, 0, 0, 0], label="none"))
    assert "data-value=" not in empty and "no events in this window" in empty


# ---------------------------------------------------------------------------
# facts over a bundle


def test_verification_covers_the_whole_trail(facts) -> None:  # type: ignore[no-untyped-def]
    v = facts.verification
    assert v.ok, v.findings
    assert v.events == 45 + 11 + 4 + 3 + 3 + 4 + 2 + 5 + 3
    assert v.chains == 2 and v.objects == 2 and v.findings == []


def test_control_counts_respect_the_window(facts) -> None:  # type: ignore[no-untyped-def]
    failed = control(facts, "failed_logins")
    assert failed.total == 9  # 7 acme + 2 globex; the ones a microsecond before and at the end are out
    assert failed.per_day == [0, 0, 7, 2]
    accounts = dict(failed.top)["Account tried"]
    assert (accounts[0]["name"], accounts[0]["n"], accounts[0]["addresses"]) == ("mallory", 5, 1)
    assert control(facts, "privilege").total == 4
    assert {r["action"]: r["n"] for r in control(facts, "privilege").by_action} == {
        "admin.role_granted": 3, "security.privilege_escalation": 1}
    assert control(facts, "config").total == 3
    assert control(facts, "trail_access").total == 2  # the invoice export is not the trail
    admin = control(facts, "admin")
    # role grants and the access review's changes (3), not the configuration changes
    assert {r["action"]: r["n"] for r in admin.by_action} == {"admin.role_granted": 3, "admin.access_granted": 2,
                                                              "admin.mfa_disabled": 1}
    sample = control(facts, "config").sample
    assert sample[0]["resource_id"] == "abc123" and "True -> False" in sample[1]["details"]


def test_overview_counts_by_category_and_day(facts) -> None:  # type: ignore[no-untyped-def]
    o = facts.overview
    assert o.category_totals["auth"] == 45 + 9
    assert o.category_totals["change"] == 4 + 2 + 1
    assert sum(o.total for o in [o]) == sum(o.category_totals.values())
    assert o.per_category["auth"][0] == 24


def test_tenant_filter(bundle: Path) -> None:
    f = build_report(SETTINGS, WINDOW, bundle=bundle, tenant="globex")
    assert f.overview.total == 2 and control(f, "failed_logins").total == 2
    assert f.reviews == []  # the reviews are acme's
    assert f.verification.ok  # verification is of the whole trail regardless


def test_coverage_names_sources_tables_and_the_gap(facts) -> None:  # type: ignore[no-untyped-def]
    cov = facts.coverage
    assert cov.unit == "hour"
    web = next(s for s in cov.sources if s.source == "web")
    assert (web.events, web.active, web.span) == (45, 45, 48)
    assert [(g.start, g.buckets) for g in web.gaps] == [(datetime(2026, 11, 3, 10, tzinfo=timezone.utc), 3)]
    assert cov.gaps[0].source in {s.source for s in cov.sources}
    tables = {(t["table"], t["updates"], t["inserts"]) for t in cov.tables}
    assert ("public.orders", 4, 0) in tables and ("public.users", 0, 2) in tables


def test_access_review_latest_and_changes(facts) -> None:  # type: ignore[no-untyped-def]
    [r] = facts.reviews
    assert r.latest.source == "access-review:file:idp.csv"
    assert r.latest.principals == 3 and r.previous is not None and r.previous.principals == 2
    assert r.in_window and r.without_mfa == 1
    assert [(c["action"], c["resource_id"]) for c in r.changes] == [
        ("admin.access_granted", "bob"), ("admin.mfa_disabled", "bob"), ("admin.access_granted", "carol")]
    assert r.change_counts == {"admin.access_granted": 2, "admin.access_revoked": 0, "admin.mfa_disabled": 1,
                               "admin.mfa_enabled": 0}
    assert [p["principal"] for p in r.principals] == ["alice", "bob", "carol"]


def test_review_before_the_window_is_still_the_latest(bundle: Path) -> None:
    f = build_report(SETTINGS, Window(date(2026, 10, 25), date(2026, 10, 31)), bundle=bundle)
    [r] = f.reviews
    assert r.previous is None and not r.in_window and r.changes == []
    assert f.overview.total == 0


# ---------------------------------------------------------------------------
# the page


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


def test_page_is_self_contained_with_every_section(facts) -> None:  # type: ignore[no-untyped-def]
    html = render_html(facts)
    page = parse(html)
    assert not [t for t, _ in page.tags if t in ("script", "link", "img", "iframe", "object")]
    refs = [a.get(k) for _, a in page.tags for k in ("src", "href") if a.get(k)]
    assert refs and all(r.startswith("#") for r in refs), refs
    sections = {a["data-section"] for t, a in page.tags if t == "section" and "data-section" in a}
    assert sections == {"overview", "failed_logins", "privilege", "admin", "config", "trail_access",
                        "verification", "coverage", "access_review"}
    assert sum(1 for t, _ in page.tags if t == "svg") == 6
    for tsc in ("CC6.1", "CC6.2", "CC6.3", "CC7.2", "CC8.1"):
        assert '<span class="tsc"' in html and f">{tsc}</span>" in html
    assert 'data-fact="failed_logins">9<' in html and 'data-fact="privilege">4<' in html
    assert 'id="verdict"' in html and 'data-ok="true"' in html


def test_page_escapes_what_events_say(tmp_path: Path) -> None:
    root = tmp_path / "b"
    root.mkdir()
    write_trail(root, [ev("auth.login_failed", "2026-11-03T01:00:00", outcome="failure",
                          actor='<img src="http://evil.example/x">', source="<script>alert(1)</script>")])
    html = render_html(build_report(SETTINGS, WINDOW, bundle=root))
    page = parse(html)
    assert not [t for t, _ in page.tags if t in ("script", "img")]
    assert "&lt;script&gt;" in html


def test_empty_window_still_reports(facts, bundle: Path) -> None:  # type: ignore[no-untyped-def]
    f = build_report(SETTINGS, Window(date(2025, 1, 1), date(2025, 1, 31)), bundle=bundle)
    html = render_html(f)
    assert f.overview.total == 0 and 'id="no-events"' in html and 'id="no-review"' in html
    assert f.coverage.unit == "day"


# ---------------------------------------------------------------------------
# the command


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SEALTRAIL_HOME": str(home), "SEALTRAIL_S3__PREFIX": PREFIX, "SEALTRAIL_RETENTION__DAYS": "30"}
    return subprocess.run([sys.executable, "-m", "sealtrail.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_cli_writes_the_report_and_exits_by_the_verdict(bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    done = run_cli(tmp_path, "report", "--from", "2026-11-02", "--to", "2026-11-05", "--out", str(out),
                   "--path", str(bundle))
    assert done.returncode == 0, done.stderr
    assert "intact" in done.stdout and 'data-fact="failed_logins">9<' in out.read_text()

    bad = run_cli(tmp_path, "report", "--from", "2026-11-31", "--to", "2026-12-05", "--out", str(out),
                  "--path", str(bundle))
    assert bad.returncode == 2 and "--from" in bad.stderr and "not a date" in bad.stderr
    nowhere = run_cli(tmp_path, "report", "--from", "2026-11-01", "--to", "2026-11-05",
                      "--out", str(tmp_path / "missing" / "r.html"), "--path", str(bundle))
    assert nowhere.returncode == 2 and "--out" in nowhere.stderr


def test_cli_on_a_tampered_trail_shows_the_findings(bundle: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "tampered"
    shutil.copytree(bundle, root)
    obj = next(p for p in root.rglob("*.parquet"))
    table = pq.read_table(obj)
    actors = table.column("actor_id").to_pylist()
    actors[0] = "someone-else"
    table = table.set_column(table.schema.get_field_index("actor_id"), table.schema.field("actor_id"),
                             pa.array(actors, pa.string()))
    pq.write_table(table, obj)
    out = tmp_path / "report.html"
    done = run_cli(tmp_path, "report", "--from", "2026-11-02", "--to", "2026-11-05", "--out", str(out),
                   "--path", str(root))
    assert done.returncode == 1, done.stderr
    html = out.read_text()
    assert 'data-ok="false"' in html and 'id="findings"' in html and "cell_changed" in html


def test_day_labels_name_the_month_when_it_changes() -> None:
    assert charts.day_label(date(2026, 8, 1), None) == "01 Aug"
    assert charts.day_label(date(2026, 9, 5), date(2026, 8, 31)) == "05 Sep"
    assert charts.day_label(date(2026, 9, 10), date(2026, 9, 5)) == "10"
    days = [date(2026, 8, 1) + timedelta(days=i) for i in range(90)]
    svg = str(charts.stacked_bars(days, {"auth": [1] * 90}, label="90 days"))
    assert svg.count('class="tick"') - len(charts.nice_ticks(1)) <= 960 // 48  # labels thinned to fit
    assert "Sep" in svg and "Oct" in svg
