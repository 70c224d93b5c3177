"""sealtrail.layout: object names are a pure function of (chain, first seq, last seq), and parse back."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealtrail.chain import chain_id
from sealtrail.layout import DataObject, data_key, data_prefix, parse_data_key, public_key_key

MAX_SEQ = 10**12 - 1  # twelve digits in the name
prefixes = st.sampled_from(["", "trail/", "a/b/", "data/", "x/data/dt=2026-01-01/"]) | st.text(
    st.characters(codec="ascii", exclude_characters="\n"), max_size=12
)
dates = st.dates().map(lambda d: d.isoformat()).filter(lambda s: len(s) == 10)


@settings(max_examples=300, deadline=None)
@given(prefixes, dates, st.integers(0, 5000), st.integers(0, MAX_SEQ), st.integers(0, MAX_SEQ))
def test_round_trip(prefix: str, dt: str, partition: int, a: int, b: int) -> None:
    first, last = min(a, b), max(a, b)
    chain = chain_id(partition)
    key = data_key(prefix, dt, chain, first, last)
    assert key.startswith(data_prefix(prefix))
    assert parse_data_key(key) == DataObject(chain, first, last, dt, key)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, MAX_SEQ), st.integers(1, MAX_SEQ), st.integers(1, MAX_SEQ), st.integers(1, MAX_SEQ))
def test_names_sort_by_sequence(a: int, b: int, c: int, d: int) -> None:
    """Zero padding makes S3's lexicographic listing the chain's order."""
    k1, k2 = data_key("t/", "2026-11-01", "p001", a, b), data_key("t/", "2026-11-01", "p001", c, d)
    assert (k1 < k2) == ((a, b) < (c, d))


def test_vector() -> None:
    assert data_key("trail/", "2026-11-01", "p003", 1, 5000) == "trail/data/dt=2026-11-01/chain=p003/p003-000000000001-000000005000.parquet"
    assert public_key_key("trail/", "ed25519-0123456789abcdef") == "trail/keys/ed25519-0123456789abcdef.pem"


GOOD = "trail/data/dt=2026-11-01/chain=p003/p003-000000000001-000000005000.parquet"


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(GOOD.replace("000000000001", "00000000001"), id="first-padding-short"),
        pytest.param(GOOD.replace("000000005000", "0000000005000"), id="last-padding-long"),
        pytest.param(GOOD.replace("-000000000001", "-1"), id="unpadded"),
        pytest.param(GOOD.replace("chain=p003/p003", "chain=p003/p004"), id="chain-mismatch-file"),
        pytest.param(GOOD.replace("chain=p003", "chain=p004", 1), id="chain-mismatch-folder"),
        pytest.param(GOOD + ".tmp", id="extra-suffix"),
        pytest.param(GOOD.replace(".parquet", ".parquet/"), id="folder-marker"),
        pytest.param(GOOD.replace(".parquet", ".json"), id="wrong-extension"),
        pytest.param(GOOD.replace("dt=2026-11-01", "dt=2026-11-1"), id="date-unpadded"),
        pytest.param(GOOD.replace("dt=2026-11-01/", ""), id="no-date-folder"),
        pytest.param(GOOD.replace("data/", "dat/"), id="not-under-data"),
        pytest.param(GOOD.replace("p003", "p03"), id="chain-two-digits"),
        pytest.param(GOOD.replace("p003", "q003"), id="chain-letter"),
        pytest.param(GOOD.replace("-000000005000", ""), id="missing-last"),
        pytest.param(GOOD.replace("000000005000", "00000000500x"), id="non-digit"),
        pytest.param("trail/keys/ed25519-0123456789abcdef.pem", id="key-object"),
        pytest.param("", id="empty"),
    ],
)
def test_malformed_keys_rejected(key: str) -> None:
    assert parse_data_key(key) is None


def test_good_key_parses() -> None:
    assert parse_data_key(GOOD) == DataObject("p003", 1, 5000, "2026-11-01", GOOD)
