"""Errors raised while loading. Each names its target (model, file or folder)."""

from __future__ import annotations

from dw_analytics.core.exceptions import DWError


class LoadError(DWError):
    """A load failed; nothing was published. ``target`` names the model or path."""


class LoadValidationError(LoadError, ValueError):
    """The data does not fit the target (unknown or missing column, null in a
    non-null field, value too large, wrong type); raised before any write.
    Carries ``target``, ``column`` and ``rows`` (the first offending row labels)."""


class OutputPathError(LoadError, ValueError):
    """An output path escapes the configured output root (``DW_OUTPUT_DIR``)."""


class SnapshotError(LoadError):
    """A Parquet snapshot folder cannot be read: nothing published yet, an unknown
    table, or a version removed while it was being read (``retryable`` is then
    True: read the ``CURRENT`` pointer again). Carries ``target`` and ``table``."""
