"""Structured logging: ``key=value`` text for people, JSON lines for machines.

Call sites pass context as ``extra={"fields": {...}}``; both formats render it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any


class _KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created))
        fields = getattr(record, "fields", None) or {}
        tail = "".join(f" {k}={_quote(v)}" for k, v in fields.items())
        text = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}{tail}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _quote(value: object) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if (" " in text or not text) else text


def configure_logging(level: str = "INFO", *, json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if json_lines else _KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for chatty in QUIET_LIBRARIES:  # per-connection chatter of libraries; their warnings still show
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))


QUIET_LIBRARIES = ("mail.log", "uvicorn.access")


def fields(**values: Any) -> dict[str, Any]:
    """Shorthand for ``extra=fields(device=..., reason=...)``."""
    return {"fields": values}
