"""printable: what a terminal would act on is shown as an escape; ordinary text of any script is kept."""

from __future__ import annotations

import pytest

from sealtrail.printable import printable


@pytest.mark.parametrize(("raw", "shown"), [
    ("\x1b[8m", "\\x1b[8m"),  # SGR 8: conceal everything after it
    ("\x1b]0;owned\x07", "\\x1b]0;owned\\x07"),  # OSC 0: retitle the window
    ("x\x1b[2K\rintact\n", "x\\x1b[2K\\rintact\\n"),  # erase the line, print a verdict of its own
    ("\x00\x08\t\x7f", "\\x00\\x08\\t\\x7f"),  # C0 and DEL
    ("\x85\x9b2J", "\\x85\\x9b2J"),  # C1: NEL, CSI
    ("a\u2028b\u2029c", "a\\u2028b\\u2029c"),  # line and paragraph separators
    ("\u202eevil\u202c \u2066x\u2069 \u200f\u061c", "\\u202eevil\\u202c \\u2066x\\u2069 \\u200f\\u061c"),  # bidi
    ("\ud800", "\\ud800"),  # a lone surrogate (Python's json accepts one) cannot even be encoded for a terminal
])
def test_controls_become_escapes(raw: str, shown: str) -> None:
    assert printable(raw) == shown


@pytest.mark.parametrize("text", ["", "plain ascii, punctuation: !@#$%^&*()[]{}\\/", "grüße ✓ 日本語 עברית 👩‍💻",
                                  "C:\\path\\x1b is text, not a control"])
def test_ordinary_text_is_kept(text: str) -> None:
    assert printable(text) == text


def test_other_values_print_as_their_text() -> None:
    assert printable(5) == "5" and printable(None) == "None"
