"""Random bytes and random JSON thrown at the real stream: every input is sealed or dead-lettered.

Invariant 7: bad input gets a clear, machine-readable reason and is never
silently lost, and the worker keeps running. Hypothesis draws the inputs; each
example runs through one real stream worker on its own topics.
"""

from __future__ import annotations

import time

import orjson
from hypothesis import HealthCheck, given, settings, strategies as st

from sealtrail.stream.validate import RejectReason
from sealtrail.workload import generate

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
    expected = len(distinct_valid) + len(inputs) - len(sealable)
    trail = make_trail(partitions=1)  # unkeyed input: one chain, so repeats of an id meet the same dedupe window
    trail.env["SEALTRAIL_STREAM__MAX_EVENT_BYTES"] = str(LIMIT)  # below the broker's message size, to reach "oversized"
    trail.emit_raw(inputs)
    trail.start("stream")
    deadline = time.monotonic() + 120
    while True:
        sealed, letters = trail.chained(), trail.dead_letters()
        if len(sealed) + len(letters) >= expected or time.monotonic() > deadline:
            break
        time.sleep(1)
    time.sleep(1)  # anything beyond the expected count would show up now
    sealed, letters = trail.chained(), trail.dead_letters()
    unique_valid_ids = {r["event_id"] for r in sealed}
    assert len(unique_valid_ids) == len(sealed), "an event id was sealed twice"
    reasons = {d["reason"] for d in letters}
    assert reasons <= {r.value for r in RejectReason}, reasons
    for d in letters:
        assert d["detail"], d
        assert ("raw" in d) != ("raw_base64" in d), "the dead letter must carry the input itself"
    # Inputs that repeat an already-sealed event id are dropped as duplicates, by design;
    # everything else is accounted for one by one.
    duplicates = len(inputs) - len(sealed) - len(letters)
    assert duplicates >= 0
    assert unique_valid_ids == distinct_valid
    assert duplicates == len(sealable) - len(distinct_valid)
    assert len(letters) == len(inputs) - len(sealable), "an invalid input is missing from the dead-letter topic"
    assert all(p.poll() is None for p in trail.procs), "the stream worker died on bad input"
    trail.stop_all()


def _is_sealable(raw: bytes) -> bool:
    from sealtrail.stream.validate import validate

    return isinstance(validate(raw, LIMIT), dict)
