"""Errors raised while extracting data. Each names the source and, where it
applies, the file, line, column and value at fault."""

from __future__ import annotations

from dw_analytics.core.exceptions import DWError


class ExtractError(DWError):
    """Base class for extract errors."""


class SourceNotFoundError(ExtractError, FileNotFoundError):
    """The file, sheet or table to read does not exist."""


class EmptySourceError(ExtractError):
    """The source has no header, or no data where data is required."""


class BadRowError(ExtractError):
    """A row cannot be read (wrong field count, unparsable value...).

    Raised at the first bad row when ``on_bad_lines="error"``; otherwise the
    row is quarantined. Carries ``file``, ``line``, ``column``, ``value`` and
    ``reason``.
    """


class UnsupportedSourceError(ExtractError):
    """The input kind, encoding, compression or field type is not supported."""
