"""sealtrail.logs: one plain line per record, whatever a logged value holds."""

from __future__ import annotations

import io
import logging

import orjson
import pytest

from sealtrail.logs import JsonFormatter, PlainFormatter

FORGED = "/v1/events\n2026-12-03 08:00:00,000 INFO sealtrail.serve: POST /v1/exports 201 1.0ms actor=adam"


def logged(formatter: logging.Formatter, *args: object, exc: bool = False) -> str:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    log = logging.getLogger("sealtrail.test_logs")
    log.handlers[:], log.propagate, log.level = [handler], False, logging.INFO
    if exc:
        try:
            raise ValueError(args[-1])
        except ValueError:
            log.exception("failed on %s", *args[:-1])
    else:
        log.info("GET %s 404", *args)
    return out.getvalue()


def test_a_percent_decoded_newline_in_a_path_cannot_forge_a_record() -> None:
    """The review's L3 reproduction: the path's newline started a second, forged log record."""
    text = logged(PlainFormatter(), FORGED)
    assert text.count("\n") == 1
    assert "GET /v1/events\\n2026-12-03 08:00:00,000 INFO sealtrail.serve: POST" in text


@pytest.mark.parametrize("raw", ["a\rb", "\x1b]0;owned\x07\x1b[8m", "x\x7fy\x85z", "a\u2028b\u202ec"])
def test_controls_and_bidi_never_reach_the_line(raw: str) -> None:
    text = logged(PlainFormatter(), raw)
    assert text.count("\n") == 1 and text.rstrip("\n").isprintable()


def test_an_exception_message_cannot_start_a_record_either() -> None:
    text = logged(PlainFormatter(), "/x", FORGED, exc=True)
    first, *rest = text.rstrip("\n").split("\n")
    assert first.endswith("ERROR sealtrail.test_logs: failed on /x")
    assert rest and all(line.startswith("  ") for line in rest)
    assert "\n  2026-12-03 08:00:00,000 INFO" in text  # indented: not a record of its own


def test_json_lines_keep_the_original_text() -> None:
    assert orjson.loads(logged(JsonFormatter(), FORGED))["message"] == f"GET {FORGED} 404"
