"""The report's facts from a trail: the bucket or an exported bundle, one window, optionally one tenant."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sealtrail.config import Settings
from sealtrail.evidence.report.facts import (
    CONTROLS,
    ControlFacts,
    Coverage,
    Overview,
    ReviewFacts,
    Verification,
    Window,
    access_reviews,
    control_facts,
    coverage,
    load_window,
    overview,
    verification_facts,
)

Say = Callable[[str], None]
Progress = Callable[[int, int], None]


@dataclass
class ReportFacts:
    window: Window
    tenant: str | None
    origin: str  # what was read: s3://bucket/prefix or the bundle folder
    generated_at: datetime
    pinned_keys: bool
    verification: Verification
    overview: Overview
    controls: list[ControlFacts]
    coverage: Coverage
    reviews: list[ReviewFacts]


def build_report(settings: Settings, window: Window, *, bundle: Path | None = None, tenant: str | None = None,
                 trusted_keys: Sequence[bytes] | None = None, say: Say | None = None,
                 verify_progress: Any = None, now: datetime | None = None) -> ReportFacts:
    """Verify the whole trail, then gather the window's facts.

    verify_progress is a context manager factory like sealtrail.cli.progress.bar
    (description -> update callback); None verifies silently.
    """
    from sealtrail.evidence.check import verify_evidence
    from sealtrail.evidence.query import open_events

    tell = say or (lambda _message: None)
    if verify_progress is None:
        checked = verify_evidence(settings, bundle=bundle, trusted_keys=trusted_keys)
    else:
        with verify_progress("verifying the trail") as update:
            checked = verify_evidence(settings, bundle=bundle, trusted_keys=trusted_keys, progress=update)
    report = checked.report
    if bundle is not None:  # the same scope as `verify --path`, and rows only from what verified unchanged
        con = open_events(checked.settings, checked.store, only=checked.trusted)
        origin = str(bundle)
    else:
        con = open_events(settings)
        origin = f"s3://{settings.s3.bucket}/{settings.s3.prefix}"
    tell(f"verified {report.events} events in {report.objects} objects: "
         f"{'intact' if report.ok else f'{len(report.findings)} findings'}")
    count = load_window(con, window, tenant)
    tell(f"{count} events from {window.first} to {window.last}{f' for tenant {tenant}' if tenant else ''}")
    facts = ReportFacts(
        window=window,
        tenant=tenant,
        origin=origin,
        generated_at=(now or datetime.now(timezone.utc)).replace(microsecond=0),
        pinned_keys=trusted_keys is not None,
        verification=verification_facts(report),
        overview=overview(con, window),
        controls=[control_facts(con, control, window) for control in CONTROLS],
        coverage=coverage(con, window),
        reviews=access_reviews(con, window, tenant),
    )
    con.close()
    return facts
