"""sealtrail.stack.workload: the demo/benchmark mix is deterministic per seed and always valid."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import orjson
import pytest

from sealtrail.event import Category
from sealtrail.stack.workload import ATTACKER_IP, TENANTS, generate
from sealtrail.stream.validate import validate

LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return list(generate(2000, seed=7))


def test_same_seed_same_events(events: list[dict]) -> None:
    assert list(generate(2000, seed=7)) == events
    assert orjson.dumps(list(generate(50, seed=7))) == orjson.dumps(events[:50])  # a prefix of a longer run


def test_other_seed_other_events(events: list[dict]) -> None:
    other = list(generate(2000, seed=8))
    assert [e["event_id"] for e in other] != [e["event_id"] for e in events]


def test_every_event_valid(events: list[dict]) -> None:
    for event in events:
        result = validate(orjson.dumps(event), LIMIT)
        assert isinstance(result, dict), (event, result)


def test_event_ids_unique(events: list[dict]) -> None:
    assert len({e["event_id"] for e in events}) == len(events)


def test_all_categories_appear(events: list[dict]) -> None:
    counts = Counter(e["category"] for e in events)
    assert set(counts) == {c.value for c in Category}


def test_mix_is_realistic(events: list[dict]) -> None:
    assert {e["tenant"] for e in events} == set(TENANTS)
    assert any(e["actor"].get("ip") == ATTACKER_IP and e["outcome"] == "failure" for e in events)
    assert any(e.get("before") is None and e.get("after") for e in events)  # inserts
    assert any(e.get("before") and e.get("after") is None for e in events)  # deletes


def test_time_advances_from_start() -> None:
    start = datetime(2030, 1, 1, tzinfo=timezone.utc)
    stamps = [datetime.fromisoformat(e["occurred_at"]) for e in generate(100, seed=1, start=start)]
    assert stamps[0] >= start
    assert stamps == sorted(stamps)
    assert all(s.tzinfo is not None for s in stamps)
