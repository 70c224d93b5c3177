"""Text from the trail or a bundle, made safe to print on an operator's terminal.

Anything a bucket writer, a bundle's sender or an event's producer chose can
reach a terminal through `query`, `verify`, `export` and `check-proof`: object
keys, file names, version ids, key ids, event fields. A terminal acts on
control characters in that text (ESC starts sequences that retitle the window,
erase lines or conceal everything after them; CR and a newline let a value
print a verdict line of its own), and bidirectional overrides reorder what
the eye reads. printable() shows each of them as an escape instead:

- C0 controls, DEL and C1 controls (U+0000-U+001F, U+007F-U+009F) as ``\\xNN``,
  with ``\\n``, ``\\r`` and ``\\t`` for the three common ones;
- the line and paragraph separators U+2028 and U+2029, the bidi embeddings,
  overrides, isolates and marks (U+061C, U+200E, U+200F, U+202A-U+202E,
  U+2066-U+2069), and lone surrogates (which a UTF-8 terminal cannot even
  be sent) as ``\\uNNNN``.

Every other character, and so all ordinary text in any script, is kept as it
is. Human-readable renderings pass each value taken from the data through
printable() and take their verdicts from a fixed vocabulary; JSON output is
left exact (its encoder escapes what JSON must).
"""

from __future__ import annotations

import re
from typing import Any

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _SHORT.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(value: Any) -> str:
    """str(value) with every control, separator and bidi character shown as an escape (module docstring)."""
    text = value if isinstance(value, str) else str(value)
    return text if _UNSAFE.search(text) is None else _UNSAFE.sub(_escape, text)
