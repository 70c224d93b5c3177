"""Random bytes and random JSON thrown at the real stream: every input is sealed or dead-lettered.

Invariant 7: bad input gets a clear, machine-readable reason and is never
silently lost, and the worker keeps running. Hypothesis draws the inputs; each
example runs through one real stream worker on its own topics.
"""

from __future__ import annotations

import hashlib
import time

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sealtrail.stack.workload import generate
from sealtrail.stream.validate import RejectReason

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
VALID = list(generate(50, seed=99))
LIMIT = 256 * 1024


@st.composite
def mutated_event(draw: st.DrawFn) -> bytes:
    """A valid event with one field replaced, removed or added: the near-misses real producers send."""
    event = dict(draw(st.sampled_from(VALID)))
    field = draw(st.sampled_from(sorted(event)))
    action = draw(st.sampled_from(["replace", "remove", "add"]))
    if action == "replace":
        event[field] = draw(JSON)
    elif action == "remove":
        del event[field]
    else:
        event[draw(st.text(min_size=1, max_size=8))] = draw(JSON)
    return orjson.dumps(event)


INPUTS = st.one_of(
    st.binary(max_size=300),
    JSON.map(orjson.dumps),
    mutated_event(),
    st.sampled_from(VALID).map(orjson.dumps),
    st.integers(300_000, 300_010).map(lambda n: b"x" * n),  # oversized
)


@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck))
@given(inputs=st.lists(INPUTS, min_size=150, max_size=250))
def test_every_input_is_sealed_or_dead_lettered(make_trail, inputs: list[bytes]) -> None:  # type: ignore[no-untyped-def]
    sealable = [orjson.loads(v)["event_id"] for v in inputs if _is_sealable(v)]
    distinct_valid = set(sealable)
    trail = make_trail(partitions=1)  # unkeyed input: one chain, so repeats of an id meet the same dedupe window
    trail.env["SEALTRAIL_STREAM__MAX_EVENT_BYTES"] = str(LIMIT)  # below the broker's message size, to reach "oversized"
    trail.emit_raw(inputs)
    trail.start("stream")
    deadline = time.monotonic() + 120
    while True:
        sealed, letters = trail.chained(), trail.dead_letters()
        if len(sealed) >= len(inputs) or time.monotonic() > deadline:
            break
        time.sleep(1)
    # The worker commits an input only once what it produced for it is acknowledged: once every input is
    # committed, audit.chained and the DLQ hold all they will ever hold for these inputs, extras included.
    deadline = time.monotonic() + 60
    while trail.committed_offsets(trail.settings.stream.group, trail.settings.kafka.topics.events)[0] < len(inputs):
        assert time.monotonic() < deadline, "the stream never committed every input"
        time.sleep(0.5)
    rows, letters = trail.chained(), trail.dead_letters()
    sealed = [r for r in rows if not r.get("kind")]
    unique_valid_ids = {r["event_id"] for r in sealed}
    assert len(unique_valid_ids) == len(sealed), "an event id was sealed twice"
    reasons = {d["reason"] for d in letters}
    assert reasons <= {r.value for r in RejectReason}, reasons
    for d in letters:
        assert d["detail"], d
        raw = inputs[d["offset"]]
        assert "raw" in d and (d["input_bytes"], d["input_sha256"]) == (len(raw), hashlib.sha256(raw).hexdigest())
    # Every input is one row of the chain: an event, a rejected row or a duplicate row, offsets 0..n-1.
    assert [r["src_offset"] for r in rows] == list(range(len(inputs)))
    assert [r["seq"] for r in rows] == list(range(1, len(inputs) + 1))
    rejected = [r for r in rows if r.get("kind") == "rejected"]
    duplicates = [r for r in rows if r.get("kind") == "duplicate"]
    assert unique_valid_ids == distinct_valid
    assert len(duplicates) == len(sealable) - len(distinct_valid)
    assert {r["event_id"] for r in duplicates} <= distinct_valid
    assert len(rejected) == len(letters) == len(inputs) - len(sealable), "an invalid input is unaccounted for"
    assert sorted(r["reason"] for r in rejected) == sorted(d["reason"] for d in letters)
    for r in rejected:  # size and digest of the input, never its content
        raw = inputs[r["src_offset"]]
        assert (r["input_bytes"], r["input_sha256"]) == (len(raw), hashlib.sha256(raw).hexdigest())
    assert all(p.poll() is None for p in trail.procs), "the stream worker died on bad input"
    trail.stop_all()


def _is_sealable(raw: bytes) -> bool:
    from sealtrail.stream.validate import validate

    return isinstance(validate(raw, LIMIT), dict)


def test_poison_inputs_are_accounted_for_and_never_stop_the_worker(trail) -> None:  # type: ignore[no-untyped-def]
    """400 KB of control bytes once became a 2.4 MB dead letter the broker refused, on every restart."""
    from sealtrail.evidence.walk import verify_store

    poison = [b"\x01" * 400_000, b'{"event_id": "' + b"\x1f" * 600_000 + b'"}', b"\xff" * 300_000]
    # review M6: an event missing event_id whose metadata holds a password and an AWS key id
    secretive = orjson.dumps({"category": "auth", "action": "login", "metadata": {
        "password": "hunter2-in-the-dlq", "apiKey": "AKIAIOSFODNN7EXAMPLE"}})
    poison.append(secretive)
    ids = trail.emit(300, seed=3)
    trail.emit_raw(poison)
    ids += trail.emit(300, seed=4)
    trail.start("stream")
    trail.start("sink")
    trail.wait_stored(600 + len(poison))
    assert all(p.poll() is None for p in trail.procs), "a worker died on poison input"
    assert set(trail.event_ids()) == set(ids)
    rejected = [r for r in trail.rows() if r["kind"] == "rejected"]
    assert len(rejected) == len(poison)
    letters = trail.dead_letters()
    assert len(letters) == len(poison)
    assert all(d["truncated"] == (d["input_bytes"] > 64 * 1024) and len(orjson.dumps(d)) < 1024 * 1024
               for d in letters)
    (told,) = [d for d in letters if d["input_sha256"] == hashlib.sha256(secretive).hexdigest()]
    assert told["reason"] == "missing_field" and told["redacted"] >= 2, told
    assert "hunter2-in-the-dlq" not in told["raw"] and "AKIAIOSFODNN7EXAMPLE" not in told["raw"], told["raw"]
    assert sorted(d["input_bytes"] for d in letters) == sorted(len(p) for p in poison)
    report = verify_store(trail.store, trail.settings)
    assert report.ok, report.findings
