"""What a run shows while it goes: progress bars and structured step logs."""

from __future__ import annotations

import json
import logging
import os
import sys
from contextvars import ContextVar
from typing import Any

from tqdm.auto import tqdm

logger = logging.getLogger("dw_analytics.pipeline")

#: set by the commands' --quiet; progress is also off when stderr is not a terminal
progress_enabled: ContextVar[bool | None] = ContextVar("progress_enabled", default=None)


def progress_bar(description: str, total: int | None = None) -> tqdm:
    """A rows-per-second progress bar on stderr, silent when not on a TTY or when disabled.

    Example:
        >>> bar = progress_bar("extract", total=10)
        >>> bar.update(10); bar.close()
    """
    enabled = progress_enabled.get()
    if enabled is None:
        enabled = sys.stderr.isatty() and os.environ.get("DW_PROGRESS", "1") != "0"
    return tqdm(
        total=total,
        desc=description,
        unit=" rows",
        unit_scale=True,
        disable=not enabled,
        leave=False,
        file=sys.stderr,
    )


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record: time, level, message, and the record's ``dw`` fields.

    Example:
        >>> record = logging.LogRecord("x", logging.INFO, "", 0, "step done", None, None)
        >>> record.dw = {"step": "load", "rows": 3}
        >>> json.loads(JsonLineFormatter().format(record))["rows"]
        3
    """

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "message": record.getMessage(),
        }
        data.update(getattr(record, "dw", {}))
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure_run_logging(log_format: str, stream: Any = None) -> logging.Handler:
    """Send the pipeline's step logs to ``stream`` as ``text`` or ``json`` lines; returns the handler."""
    if log_format not in ("text", "json"):
        raise ValueError(f"log format must be 'text' or 'json', got {log_format!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLineFormatter() if log_format == "json" else logging.Formatter("%(asctime)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler
