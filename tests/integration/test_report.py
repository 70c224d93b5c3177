"""`sealtrail report` end to end: a trail with known counts through the real stack, the page in headless Chromium.

Events go through the real client, broker, stream and sink into locked
Parquet; the report is made by the command as an operator runs it; Debian's
Chromium (`make browser`) loads the page from a file, and the test reads the
numbers back from the DOM the browser built and takes a screenshot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from sealtrail.producers.access_review import Principal, publish_review
from sealtrail.producers.client import AuditClient

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars")
FIRST, LAST = "2026-11-16", "2026-11-20"
FAILED_LOGINS = 7
ROLE_GRANTS = 3


def event(action: str, when: str, **fields: Any) -> dict[str, Any]:
    return {"category": action.split(".")[0] if not action.startswith("data.") else "change", "action": action,
            "occurred_at": when, "tenant": "acme", "outcome": "success", **fields}


def known_events() -> list[dict[str, Any]]:
    events = []
    for i in range(40):  # background: logins on every day of the window
        events.append(event("auth.login", f"2026-11-{16 + i % 5}T{8 + i % 8:02d}:15:00Z",
                            actor={"id": f"user{i % 6}", "ip": "198.51.100.7"}, source="web"))
    for i in range(FAILED_LOGINS):
        events.append(event("auth.login_failed", f"2026-11-{17 + i % 2}T03:0{i}:00Z", outcome="failure",
                            actor={"id": "mallory", "ip": "203.0.113.9"}, source="sso",
                            metadata={"reason": "bad_password"}))
    for i, user in enumerate(("bob", "carol", "dave")[:ROLE_GRANTS]):
        events.append(event("admin.role_granted", f"2026-11-19T10:0{i}:00Z", actor={"id": "root"}, source="console",
                            resource={"type": "user", "id": user}, metadata={"role": "admin"}))
    events.append(event("admin.config_changed", "2026-11-18T12:00:00Z", actor={"id": "root"}, source="console",
                        resource={"type": "config", "id": "session_timeout"},
                        before={"value": 30}, after={"value": 600}))
    events.append(event("access.export", "2026-11-20T09:00:00Z", actor={"id": "auditor"}, source="console",
                        resource={"type": "audit_trail", "id": "2026-10"}, metadata={"rows": 1200}))
    # one emitted the day after the window: must not count
    events.append(event("auth.login_failed", "2026-11-21T00:00:00Z", outcome="failure",
                        actor={"id": "mallory", "ip": "203.0.113.9"}, source="sso"))
    return events


def publish_reviews(client: AuditClient, home: Path) -> int:
    """Two reviews of one source; the second differs by 3: alice revoked, bob's MFA off, carol granted."""
    first = [Principal("alice", "user", ("admins",), ("AdministratorAccess",), True),
             Principal("bob", "user", ("dev",), (), True)]
    second = [Principal("alice", "user", ("admins",), (), True), Principal("bob", "user", ("dev",), (), False),
              Principal("carol", "user", ("dev",), (), True)]
    a = publish_review(client, first, source="file:idp.csv", home=home, tenant="acme", reviewer="rita",
                       taken_at=datetime(2026, 11, 2, 9, tzinfo=timezone.utc))
    b = publish_review(client, second, source="file:idp.csv", home=home, tenant="acme", reviewer="rita",
                       taken_at=datetime(2026, 11, 19, 9, tzinfo=timezone.utc))
    assert (a.changes, b.changes) == (0, 3)
    return a.principals + b.principals + b.changes


class Dom(HTMLParser):
    """Elements with their attributes and text, from the DOM Chromium serialised after load."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.facts: dict[str, str] = {}
        self._fact: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.elements.append((tag, a))
        self._fact = a.get("data-fact")

    def handle_data(self, data: str) -> None:
        if self._fact and data.strip():
            self.facts[self._fact] = data.strip()
            self._fact = None


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    return subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


def test_report_of_a_real_trail_in_a_browser(trail, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert os.access(CHROMIUM, os.X_OK), "Chromium is missing: run `make browser` (apt-get install chromium)"
    home = tmp_path / "home"
    home.mkdir()
    with AuditClient(trail.settings) as client:
        for e in known_events():
            client.emit(e)
        reviews = publish_reviews(client, home)
    total = len(known_events()) + reviews
    trail.start("stream")
    trail.start("sink")
    trail.wait_stored(total)

    out = tmp_path / "report.html"
    done = subprocess.run(
        [sys.executable, "-m", "sealtrail.cli", "report", "--from", FIRST, "--to", LAST, "--out", str(out)],
        env={**os.environ, **trail.env}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "intact" in done.stdout

    dumped = chromium(tmp_path, "--dump-dom", out.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = Dom()
    dom.feed(dumped.stdout)
    tags = [t for t, _ in dom.elements]
    sections = {a["data-section"] for t, a in dom.elements if t == "section" and a.get("data-section")}
    assert sections == {"overview", "failed_logins", "privilege", "admin", "config", "trail_access",
                        "verification", "coverage", "access_review"}
    assert tags.count("svg") == 6 and tags.count("rect") > 10
    assert not {"script", "link", "img", "iframe"} & set(tags)
    refs = [a[k] for _, a in dom.elements for k in ("src", "href") if a.get(k)]
    assert all(r.startswith("#") for r in refs), [r for r in refs if not r.startswith("#")]
    assert ("div", {"class": "verdict ok", "id": "verdict", "data-ok": "true"}) in dom.elements

    in_window = total - 1 - 2  # not the failed login after the window, nor the first review's 2 snapshots (2 Nov)
    assert dom.facts["failed_logins"] == str(FAILED_LOGINS)
    assert dom.facts["privilege"] == str(ROLE_GRANTS)
    assert dom.facts["admin"] == str(ROLE_GRANTS + 3)  # the grants and the review's three changes
    assert dom.facts["config"] == "1" and dom.facts["trail_access"] == "1"
    assert dom.facts["verified-events"] == f"{total:,}"
    assert dom.facts["principals"] == "3" and dom.facts["review-changes"].startswith("3:")
    assert dom.facts["events"] == str(in_window), dom.facts
    assert {a.get("data-source") for t, a in dom.elements if t == "tr" and a.get("data-source")} == {
        "web", "sso", "console", "access-review:file:idp.csv"}

    shot = tmp_path / "report.png"
    taken = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,4000", out.as_uri())
    assert taken.returncode == 0 and shot.stat().st_size > 50_000, taken.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if keep := os.environ.get("SEALTRAIL_KEEP_REPORT_SCREENSHOT"):
        shutil.copyfile(shot, keep)
        shutil.copyfile(out, Path(keep).with_suffix(".html"))


def test_report_errors_are_clear(trail, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, **trail.env}
    cmd = [sys.executable, "-m", "sealtrail.cli", "report", "--out", str(tmp_path / "r.html")]
    bad = subprocess.run([*cmd, "--from", "2026-02-30", "--to", "2026-03-01"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "--from: not a date" in bad.stderr
    empty = subprocess.run([*cmd, "--from", "2026-01-01", "--to", "2026-01-02"], env=env, capture_output=True,
                           text=True)
    assert empty.returncode == 0, empty.stderr
    html = (tmp_path / "r.html").read_text()
    assert 'id="no-events"' in html and 'data-fact="events">0<' in html
