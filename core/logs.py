"""Logging for the workers and the CLI: readable lines on a terminal, JSON lines for collectors.

JSON lines (``--log-json`` or ``SEALTRAIL_LOG_JSON=1``) carry time, level,
logger and message, plus the exception when there is one, so a log pipeline
can index worker output without parsing free text.

Plain lines are one line per record whatever a logged value holds: control
characters (newlines included), DEL, line separators and bidi overrides in the
message become escapes (sealtrail.printable), so a request path such as
``/x%0A2026-12-03 08:00:00,000 INFO ...`` cannot forge a second record or
repaint the terminal; every line of a traceback is indented, so none starts
where a record does.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timezone

import orjson

from sealtrail.printable import printable


class PlainFormatter(logging.Formatter):
    """``time LEVEL logger: message``, the message escaped by printable() and a traceback indented."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = printable(record.message)
        return super().formatMessage(record)

    def formatException(self, ei) -> str:  # noqa: N802
        return "\n".join("  " + printable(line) for line in super().formatException(ei).splitlines())

    def formatStack(self, stack_info: str) -> str:  # noqa: N802
        return "\n".join("  " + printable(line) for line in stack_info.splitlines())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        fields = getattr(record, "fields", None)  # logger.info(..., extra={"fields": {...}}): structured context
        if isinstance(fields, dict):
            doc.update({k: v for k, v in fields.items() if k not in doc})
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(doc).decode()


def configure(verbose: bool = False, json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
