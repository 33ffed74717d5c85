"""Live status of running pipelines, and cancellation, visible from other processes.

Like SQL Server's ``sys.dm_exec_requests`` for our runs: each run reports
its current step, rows done, rows/s, elapsed time and memory as it goes,
and checks at every chunk boundary whether it was asked to stop.

The pipeline's own connection is inside the run's transaction, so the
status goes elsewhere: on PostgreSQL, a second connection updates the
``PipelineRun`` row in autocommit mode; on SQLite (one writer at a time, and
the run is that writer) a small JSON file per run under
``DW_DATA_DIR/run-status/``. :func:`live_status` and :func:`request_cancel`
read and write whichever applies.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections
from django.utils import timezone

from dw_analytics.core.exceptions import DWError
from dw_analytics.core.monitor import current_rss_mb

#: seconds between two status writes (cancellation is checked as often)
HEARTBEAT_S = 1.0


class RunCancelled(DWError):
    """The run was cancelled on request; everything it wrote was rolled back."""


def _status_dir() -> Path:
    return Path(getattr(settings, "DATA_DIR", "data")) / "run-status"


def _uses_side_file(using: str) -> bool:
    return connections[using].vendor != "postgresql"


class LiveStatus:
    """The reporter a running pipeline writes its progress to.

    Example:
        >>> status = LiveStatus(run_id=7, using="default")  # doctest: +SKIP
        >>> status.update(step="load", rows_done=50_000)  # doctest: +SKIP
        >>> status.cancel_requested()  # doctest: +SKIP
        False
    """

    def __init__(self, run_id: int, using: str = "default") -> None:
        self.run_id = run_id
        self.using = using
        self.started = time.monotonic()
        self.step = ""
        self.rows_done = 0
        self._last_write = 0.0
        self._cancel = False
        self._side_file = _uses_side_file(using)
        self._connection = None

    def update(self, *, step: str | None = None, rows: int = 0, force: bool = False) -> None:
        """Record progress; written at most every :data:`HEARTBEAT_S` seconds unless ``force``."""
        if step is not None:
            self.step = step
        self.rows_done += rows
        now = time.monotonic()
        if force or now - self._last_write >= HEARTBEAT_S:
            self._last_write = now
            self._write()

    def check_cancel(self) -> None:
        """Raise :class:`RunCancelled` when a cancel was seen at the last status write."""
        if self._cancel:
            raise RunCancelled(f"run {self.run_id} was cancelled on request", run_id=self.run_id)

    def cancel_requested(self) -> bool:
        return self._cancel

    def close(self) -> None:
        """Stop reporting: remove the side file, close the side connection."""
        if self._side_file:
            for suffix in (".json", ".cancel"):
                (_status_dir() / f"{self.run_id}{suffix}").unlink(missing_ok=True)
        elif self._connection is not None:
            self._connection.close()
            self._connection = None

    def _fields(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        return {
            "current_step": self.step,
            "rows_done": self.rows_done,
            "rss_mb": round(current_rss_mb(), 1),
            "heartbeat_at": timezone.now(),
            "elapsed_s": round(elapsed, 3),
            "rows_per_s": round(self.rows_done / elapsed, 1) if elapsed > 0 else 0.0,
        }

    def _write(self) -> None:
        fields = self._fields()
        if self._side_file:
            folder = _status_dir()
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{self.run_id}.json.tmp"
            tmp.write_text(json.dumps(fields, default=str))
            os.replace(tmp, folder / f"{self.run_id}.json")
            self._cancel = (folder / f"{self.run_id}.cancel").exists()
            return
        if self._connection is None:
            self._connection = connections.create_connection(self.using)
        with self._connection.cursor() as cursor:
            cursor.execute(
                "UPDATE warehouse_pipelinerun SET current_step = %s, rows_done = %s, rss_mb = %s, heartbeat_at = %s "
                "WHERE id = %s RETURNING cancel_requested",
                [fields["current_step"], fields["rows_done"], fields["rss_mb"], fields["heartbeat_at"], self.run_id],
            )
            row = cursor.fetchone()
        self._cancel = bool(row and row[0])


def live_status(run: Any) -> dict[str, Any]:
    """The live fields of a ``PipelineRun`` (step, rows done, rows/s, elapsed, memory, heartbeat).

    Example:
        >>> live_status(PipelineRun.objects.get(pk=7))["rows_done"]  # doctest: +SKIP
        150000
    """
    elapsed = (timezone.now() - run.started_at).total_seconds()
    status = {
        "current_step": run.current_step,
        "rows_done": run.rows_done,
        "rss_mb": run.rss_mb,
        "heartbeat_at": run.heartbeat_at,
    }
    side = _status_dir() / f"{run.pk}.json"
    if _uses_side_file(run._state.db or "default") and side.exists():
        with contextlib.suppress(OSError, ValueError):  # replaced while being read: the row's fields will do
            status.update(json.loads(side.read_text()))
    status["elapsed_s"] = round(elapsed, 1)
    status["rows_per_s"] = round(status["rows_done"] / elapsed, 1) if elapsed > 0 else 0.0
    return status


def request_cancel(run: Any) -> None:
    """Ask a running run to stop at its next chunk boundary (it then rolls back)."""
    if _uses_side_file(run._state.db or "default"):
        folder = _status_dir()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{run.pk}.cancel").touch()
        return
    run.cancel_requested = True
    run.save(update_fields=["cancel_requested"])
