"""Errors raised by the on-demand jobs. Each names the source, file or model at fault."""

from __future__ import annotations

from dw_analytics.core.exceptions import DWError


class JobError(DWError):
    """Base class of the jobs' errors."""


class UnknownSourceError(JobError, LookupError):
    """An export source is neither a model label, a warehouse table nor a registered query."""


class CorrectionError(JobError):
    """A corrections file cannot be used as a whole (unknown column, missing key column...)."""


class CorrectionsRejected(CorrectionError):
    """``strict`` corrections with rejected rows: nothing was written. ``report`` has the reasons."""


class RevertConflict(CorrectionError):
    """Rows corrected by a run changed since; reverting would overwrite those later changes."""


class SyncError(JobError):
    """A sync cannot run: unknown source columns, an unusable watermark column..."""


class ConsolidationError(JobError):
    """A consolidation mapping or file is unusable (bad TOML, unmapped columns...)."""
