"""The base of every error dw_analytics raises.

Each stage (extract, load, pipelines) has its own exceptions module whose
classes derive from :class:`DWError`. An error carries the structured facts a
user needs to act (file, line, column, value, table, run id) and says whether
retrying can help.
"""

from __future__ import annotations

from typing import Any


class DWError(Exception):
    """Base class of dw_analytics errors.

    Args:
        message: what went wrong and what to do about it.
        retryable: True when the same call may succeed later unchanged
            (a dropped connection, a lock held by another run).
        **context: structured facts (``file``, ``line``, ``column``,
            ``value``, ``table``, ``run_id``...) kept in ``self.context``.

    Example:
        >>> err = DWError("bad value", column="total", line=3)
        >>> err.context["line"]
        3
    """

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable
        self.context = {k: v for k, v in context.items() if v is not None}

    def __getattr__(self, name: str) -> Any:
        # Structured fields read as attributes (err.file, err.line); absent ones are None.
        if name.startswith("__") or name == "context":
            raise AttributeError(name)
        return self.context.get(name)


class ConfigurationError(DWError):
    """An option or setting is invalid; the message names it and the valid choices."""
