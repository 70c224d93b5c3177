"""The restart-cost benchmark's pure parts: how a synthetic trail is split, dated and judged."""

from __future__ import annotations

import importlib.util
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str):  # type: ignore[no-untyped-def]
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))  # restart_cost imports its neighbours by name, as when run as a script
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]  # dataclasses look their module up
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


synthetic = _load("synthetic_trail")
restart_cost = _load("restart_cost")


def test_events_and_objects_are_split_over_the_chains_without_loss() -> None:
    plans = synthetic.plan_chains(6, 1_000_003, 100_001, seed=7)
    assert sum(p.events for p in plans) == 1_000_003 and sum(p.objects for p in plans) == 100_001
    assert max(p.events for p in plans) - min(p.events for p in plans) <= 1
    assert len({p.seed for p in plans}) == 6  # each chain its own event ids


def test_more_objects_than_events_is_refused() -> None:
    with pytest.raises(synthetic.BuildError):
        synthetic.plan_chains(6, 10, 11, seed=7)


def test_the_trail_ends_yesterday_so_today_holds_only_the_restart() -> None:
    start, end = synthetic.trail_span(365, datetime(2026, 12, 4, 6, 30, tzinfo=timezone.utc))
    assert end == datetime(2026, 12, 3, 23, 0, tzinfo=timezone.utc)
    assert (end - start).days == 365


def test_a_metric_meets_the_target_at_one_and_a_half_times_the_young_trail() -> None:
    young = {label: 10.0 for label, _, _ in restart_cost.METRICS}
    old = {label: 15.0 for label, _, _ in restart_cost.METRICS}
    old["restart-to-durable, s"] = 15.1
    rows = {r["metric"]: r for r in restart_cost.compare(young, old)}
    assert rows["recovery: S3 requests"]["meets"] and rows["recovery: S3 requests"]["ratio"] == 1.5
    assert not rows["restart-to-durable, s"]["meets"]
