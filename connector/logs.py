"""Logging, configured once per process: human lines, or JSON lines with LOG_FORMAT=json.

Every record shows the fields its call passed with `extra=` (the code logs events such as
`delivery.dead_letter` with their ids as fields, not inside the text) and, inside a web request,
that request's id: the one its answers carry in `X-Request-Id` and in every JSON error.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

#: What a LogRecord carries by itself; everything else on it came with `extra=`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}

FORMATS = ("text", "json")


def request_id() -> str:
    """This web request's id, made at its first use; "" outside a request."""
    from flask import g, has_request_context

    if not has_request_context():
        return ""
    if "request_id" not in g:
        g.request_id = uuid.uuid4().hex
    return str(g.request_id)


def stamp_request_ids() -> None:
    """Give every log record made during a web request that request's id (once per process).

    A record factory rather than a handler filter, so every handler sees the id: ours, a test's
    capture, or one a deployment adds. So no call may pass `request_id` in `extra=`: logging
    refuses to overwrite an attribute the record already has (KeyError).
    """
    made = logging.getLogRecordFactory()
    if getattr(made, "stamps_request_ids", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = made(*args, **kwargs)
        record.request_id = request_id()
        return record

    factory.stamps_request_ids = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class TextFormatter(logging.Formatter):
    """Lines like `2026-12-02 10:00:00,123 WARNING connector.pipeline.worker msg delivery_id=7`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The line, then `key=value` for each field and the request id, then any traceback."""
        saved, record.exc_text, record.exc_info = record.exc_info, None, None
        try:
            line = super().format(record)
        finally:
            record.exc_info = saved
        fields = _fields(record)
        if rid := getattr(record, "request_id", ""):
            fields["request_id"] = rid
        if fields:
            line += " " + " ".join(f"{k}={v!r}" for k, v in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the fields, request_id, error."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON; values JSON cannot hold are written as text."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if rid := getattr(record, "request_id", ""):
            entry["request_id"] = rid
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The connector's own handler on the root logger (recognised when configuring again)."""


def configure_logging(settings: Mapping[str, Any]) -> None:
    """Send every log record to stderr in LOG_FORMAT at LOG_LEVEL; calling again replaces it."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(handler)
    handler = _Handler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings["LOG_FORMAT"] == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(str(settings["LOG_LEVEL"]).upper())
    # APScheduler logs every run of every job at INFO; connector/scheduler.py says what matters.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    stamp_request_ids()
