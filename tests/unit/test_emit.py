"""`sealtrail emit`: a bad line is reported with its number and skipped, the rest is sent, and what the
client sends is what the stream seals (one rule for numbers and depth)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from sealtrail.cli.commands_workers import read_lines
from sealtrail.cli.main import cli
from sealtrail.errors import InvalidEventError
from sealtrail.producers import client as client_module
from sealtrail.producers.client import check_size
from sealtrail.producers.outbound import NESTING_MAX, encode, parse_line, prepare
from sealtrail.redact import DEFAULT
from sealtrail.stream.validate import Rejection, validate_counted

LIMIT = 1 << 20


def line(metadata_json: str = "{}", field: str = "metadata") -> bytes:
    base = {"event_id": "00000000-0000-4000-8000-000000000001", "occurred_at": "2026-01-01T00:00:00Z",
            "category": "auth", "action": "auth.login", "actor": {"id": "alice"}, "tenant": "acme", "source": "web"}
    text = orjson.dumps(base).decode()
    return f'{text[:-1]},"{field}":{metadata_json}}}'.encode()


def nested(depth: int) -> str:
    """A JSON object depth levels deep ({} is 1)."""
    return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)


class Recorder:
    """AuditClient's interface as emit uses it; the client itself is covered by the integration tests."""

    def __init__(self, settings: Any, **_: Any) -> None:
        self.max_event_bytes = LIMIT
        self.redactor = DEFAULT
        self.sent = 0
        self.values: list[bytes] = []

    def send_raw(self, value: bytes, key: str) -> None:
        check_size(value, self.max_event_bytes)
        self.values.append(value)
        self.sent += 1

    def __enter__(self) -> Recorder:
        Recorder.last = self
        return self

    def __exit__(self, *exc: object) -> None:
        pass


REVIEW_LINES = [
    line(nested(300)),  # 1: pydantic's serializer raised ValueError here and emit stopped
    line('{"n":1}'),  # 2
    line('{"pad":"' + "x" * (2 << 20) + '"}'),  # 3: 2 MiB, read no further than the limit
    line('{"ratio":NaN}'),  # 4: was sent as null
    line('{"n":123456789012345678901234567890}'),  # 5: was sent as 1.2345678901234568e+29
    line('{"n":' + str(2**70) + "}"),  # 6: was a TypeError from orjson
    b"{not json",  # 7
    b"   ",  # 8: blank, skipped without a word
    b"[1, 2]",  # 9
    line('{"n":2}'),  # 10
]


def test_every_bad_line_is_reported_with_its_number_and_the_rest_is_sent(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The review's L1 reproductions in one file: emit used to stop at the first of them."""
    monkeypatch.setattr(client_module, "AuditClient", Recorder)
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"\n".join(REVIEW_LINES))  # no newline after the last line
    result = CliRunner().invoke(cli, ["--home", str(tmp_path / "home"), "emit", str(source)], standalone_mode=False)
    assert result.exception is None, result.output
    assert result.return_value == 1
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("line ")]
    assert [e.split(":")[0] for e in errors] == ["line 1", "line 3", "line 4", "line 5", "line 6", "line 7", "line 9"]
    assert errors[0].startswith("line 1: invalid_json: recursion limit exceeded")  # the stream's parser, its words
    assert errors[1].startswith("line 3: oversized: ") and f"> limit {LIMIT}" in errors[1]
    assert errors[2].startswith("line 4: invalid_json")
    assert errors[3].startswith("line 5: not_canonicalizable at metadata")
    assert errors[4].startswith("line 6: not_canonicalizable at metadata")
    assert errors[6] == "line 9: not_an_object: each line must be a JSON object"
    assert "error: 7 invalid lines were not sent" in result.stderr
    assert [orjson.loads(v)["metadata"] for v in Recorder.last.values] == [{"n": 1}, {"n": 2}]


def test_the_command_exits_1_with_the_count_and_no_traceback(tmp_path: Path) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_bytes(b"\n".join([REVIEW_LINES[0], REVIEW_LINES[3], REVIEW_LINES[6]]) + b"\n")
    done = subprocess.run([sys.executable, "-m", "sealtrail.cli", "--home", str(tmp_path / "home"),
                           "--bootstrap", "127.0.0.1:9", "emit", str(source)],
                          capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert [ln.split(":")[0] for ln in done.stderr.splitlines() if ln.startswith("line ")] == ["line 1", "line 2", "line 3"]
    assert "error: 3 invalid lines were not sent" in done.stderr


class Reads(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.asked: list[int] = []

    def readline(self, size: int | None = -1) -> bytes:  # type: ignore[override]
        self.asked.append(-1 if size is None else size)
        return super().readline(size)


def test_lines_are_read_with_a_bound() -> None:
    source = Reads(b'{"a":1}\n' + b"x" * 50_000 + b"\n" + b"y" * 10 + b"\n" + b"z" * 100)
    assert [(n, ln, size) for n, ln, size in read_lines(source, 100)] == [
        (1, b'{"a":1}\n', 8), (2, None, 50_001), (3, b"y" * 10 + b"\n", 11), (4, b"z" * 100, 100)]
    assert -1 not in source.asked and max(source.asked) == 1 << 16


# --- one rule: what the client sends, the stream seals; what it refuses, the stream refuses ----------------

AGREEMENT = [
    ("2**53 - 1", '{"n":9007199254740991}'),
    ("-(2**53 - 1)", '{"n":-9007199254740991}'),
    ("2**53", '{"n":9007199254740992}'),
    ("2**64", '{"n":18446744073709551616}'),
    ("30 digits", '{"n":123456789012345678901234567890}'),
    ("a float", '{"x":1.5}'),
    ("a large float", '{"x":1.5e300}'),
    ("overflowing float", '{"x":1e400}'),
    ("NaN", '{"x":NaN}'),
    ("Infinity", '{"x":-Infinity}'),
    ("in a list", '{"x":[1,2,9007199254740993]}'),
    ("a card number beyond 2**53", '{"x":4111111111111111110}'),  # redacted first, in both
    (f"{NESTING_MAX} deep", nested(NESTING_MAX)),
    (f"{NESTING_MAX + 1} deep", nested(NESTING_MAX + 1)),
    ("arrays at the limit", "[" * (NESTING_MAX - 1) + "[]" + "]" * (NESTING_MAX - 1)),
    ("arrays past the limit", '{"a":' + "[" * (NESTING_MAX - 1) + "[]" + "]" * (NESTING_MAX - 1) + "}"),
]


def client_accepts(raw: bytes) -> bool:
    try:
        check_size(encode(prepare(parse_line(raw))), LIMIT)
    except InvalidEventError:
        return False
    return True


@pytest.mark.parametrize(("case", "value"), AGREEMENT, ids=[c for c, _ in AGREEMENT])
def test_client_and_stream_agree_on_numbers_and_depth(case: str, value: str) -> None:
    for raw in [line(value), *([line(value, "after")] if value.startswith("{") else [])]:
        verdict = validate_counted(raw, LIMIT)[0]
        assert client_accepts(raw) == (not isinstance(verdict, Rejection)), raw[-80:]
        if client_accepts(raw):  # and what the client sends gives the stream the same columns
            assert validate_counted(encode(prepare(parse_line(raw))), LIMIT)[0] == verdict


def test_prepare_applies_the_rule_to_python_values_too() -> None:
    """Callers of emit() pass dicts, not JSON: the same limits, and no value is silently changed."""
    base = orjson.loads(line())
    deep: dict = {}
    node = deep
    for _ in range(NESTING_MAX - 1):
        node["a"] = {}
        node = node["a"]
    assert prepare({**base, "metadata": deep}).metadata == deep
    with pytest.raises(InvalidEventError, match="nested deeper than 200"):
        prepare({**base, "metadata": {"a": deep}})
    for value, why in [(float("nan"), "nan"), (float("inf"), "inf"), (2**53, "exceeds safe integer")]:
        with pytest.raises(InvalidEventError, match=f"not_canonicalizable at before: .*{why}"):
            prepare({**base, "before": {"x": [value]}})
