"""The log a pipeline run returns: counts, timings, memory, error."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class StepLog:
    """Timing, memory and row count of one step (extract, transform, load...)."""

    name: str
    duration_s: float = 0.0
    peak_rss_mb: float = 0.0
    n_rows: int | None = None


@dataclass
class RunLog:
    """What happened during a run.

    The seed's keys (``started_at``, ``finished_at``, ``n_processed``,
    ``n_errors``, ``error``) plus load counts, duration, peak memory and the
    per-step timings. ``result`` holds what ``transform`` returned (not
    persisted), so a notebook gets both the log and the data.

    Example:
        >>> log = RunLog(pipeline="analytics")
        >>> log.succeeded
        False
    """

    pipeline: str
    run_id: int | None = None
    status: str = "running"
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    n_processed: int = 0
    n_errors: int = 0
    n_inserted: int = 0
    n_updated: int = 0
    n_deleted: int = 0
    duration_s: float = 0.0
    peak_rss_mb: float = 0.0
    error: str | None = None
    traceback: str | None = None
    steps: list[StepLog] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    result: Any = field(default=None, repr=False, compare=False)

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    def step(self, name: str) -> StepLog:
        """The step called ``name``; ``KeyError`` when the run has none."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (datetimes as ISO strings, no ``result``)."""
        data = asdict(self)
        data.pop("result")
        for key in ("started_at", "finished_at"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        return data
