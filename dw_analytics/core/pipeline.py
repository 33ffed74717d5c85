"""The pipeline engine: extract -> transform -> load, atomic, measured, recorded."""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import Any, ClassVar

import pandas as pd
from django.core.mail import mail_admins
from django.db import transaction
from django.utils import timezone

from dw_analytics.core.exceptions import ConfigurationError
from dw_analytics.core.locks import pipeline_lock
from dw_analytics.core.monitor import Measurement, measure
from dw_analytics.core.observe import logger, progress_bar
from dw_analytics.core.runlog import RunLog, StepLog
from dw_analytics.core.status import LiveStatus, RunCancelled
from dw_analytics.load.base import LoadResult


class BasePipeline:
    """Template for a pipeline: override ``extract``, ``transform`` and ``load``.

    ``run()`` executes the three steps inside one ``transaction.atomic`` on
    ``database``, times each step and measures its peak memory, and records
    the run in ``PipelineRun`` (outside that transaction, so a failed run is
    recorded too). A failure rolls back every write of the run.

    Counting: the rows returned by ``extract`` (a DataFrame) count as
    processed unless the pipeline calls :meth:`add_processed` itself; rejected
    rows are counted with :meth:`add_errors`; ``LoadResult`` objects returned
    by ``load`` are summed into the log.

    Example:
        >>> class Doubler(BasePipeline):
        ...     name = "doubler"
        ...     def extract(self):
        ...         return pd.DataFrame({"x": [1, 2]})
        ...     def transform(self, df):
        ...         return df.assign(x=df["x"] * 2)
        >>> log = Doubler().run()  # doctest: +SKIP
        >>> log.n_processed, log.result["x"].tolist()  # doctest: +SKIP
        (2, [2, 4])
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: database alias whose transaction wraps the run
    database: ClassVar[str] = "default"
    #: how old the last successful run may be before the output counts as stale
    freshness: ClassVar[timedelta | None] = None
    #: accepted parameters: name -> converter applied to the given value
    #: (so ``--param chunksize=5000`` from the command line becomes an int)
    parameters: ClassVar[dict[str, Callable[[Any], Any]]] = {}
    #: stream each extracted chunk through transform and load on its own
    chunked: ClassVar[bool] = False

    def __init__(self, *, using: str | None = None, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            valid = ", ".join(sorted(self.parameters)) or "none"
            raise ConfigurationError(
                f"pipeline {self.name!r} does not accept parameter(s) {', '.join(unknown)}; valid: {valid}"
            )
        try:
            self.params = {key: self.parameters[key](value) for key, value in params.items()}
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"pipeline {self.name!r}: invalid parameter value: {exc}") from exc
        self.using = using or self.database
        self.step_prefix = ""
        self.status: LiveStatus | None = None
        self.log: RunLog | None = None
        self._processed_set = False

    # -- the three verbs -------------------------------------------------
    def extract(self) -> Any:
        """Read the input. Default: nothing."""
        return None

    def transform(self, data: Any) -> Any:
        """Turn the extracted data into the output. Default: identity."""
        return data

    def load(self, data: Any) -> LoadResult | Iterable[LoadResult] | None:
        """Write the output. Default: nothing."""
        return None

    def publish(self, result: Any) -> Any:
        """Publish outside the database (files, notifications) after the run's transaction commits.

        Runs only when overridden, as a measured step ``publish``, still under the
        pipeline's lock. Its failure fails the run, but the database changes
        are already committed: make it idempotent, so the next run can redo it.
        """
        return None

    def execute(self) -> Any:
        """Wire the steps; override to add steps (each wrapped in :meth:`step`).

        When ``extract`` returns an iterator of DataFrames, its rows are
        counted as they stream. With ``chunked = True`` each chunk then goes
        through ``transform`` and ``load`` on its own (memory bounded by the
        chunk; the steps' timings add up over the chunks); otherwise
        ``transform`` receives the whole iterator (for ``rollup``).
        """
        data = self.step("extract", self.extract)
        if isinstance(data, pd.DataFrame):
            if not self._processed_set:
                self.log.n_processed += len(data)
        elif isinstance(data, Iterator):
            if self.chunked:
                return self._execute_chunks(data)
            data = self._counted(data)
        result = self.step("transform", self.transform, data)
        self.step("load", self.load, result)
        return result

    def _counted(self, chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        with progress_bar(f"{self.step_prefix}{self.name} extract") as bar:
            for chunk in chunks:
                self.add_processed(len(chunk))
                bar.update(len(chunk))
                self.heartbeat(len(chunk))
                yield chunk

    def _execute_chunks(self, chunks: Iterator[pd.DataFrame]) -> None:
        extract_log = self.log.steps[-1]
        extract_log.n_rows = 0
        transform_log = StepLog(f"{self.step_prefix}transform", n_rows=0)
        load_log = StepLog(f"{self.step_prefix}load", n_rows=0)
        self.log.steps += [transform_log, load_log]
        with progress_bar(f"{self.step_prefix}{self.name}") as bar:
            while True:
                with measure() as m:
                    chunk = next(chunks, None)
                _accumulate(extract_log, m)
                if chunk is None:
                    break
                extract_log.n_rows += len(chunk)
                self.add_processed(len(chunk))
                with measure() as m:
                    result = self.transform(chunk)
                _accumulate(transform_log, m, result)
                with measure() as m:
                    loaded = self.load(result)
                self.record_load(loaded)
                _accumulate(load_log, m, loaded)
                bar.update(len(chunk))
                self.heartbeat(len(chunk))
        for step_log in (extract_log, transform_log, load_log):
            self._log_step(step_log)
        return None

    def execute_within(self, parent: BasePipeline) -> Any:
        """Execute as part of ``parent``'s run: same transaction and log, steps named ``<name>.<step>``.

        Example:
            >>> class Nightly(BasePipeline):  # doctest: +SKIP
            ...     def execute(self):
            ...         return ETLPipeline(using=self.using).execute_within(self)
        """
        self.log = parent.log
        self.status = parent.status
        self.step_prefix = f"{parent.step_prefix}{self.name}."
        self._processed_set = False
        self._quarantined = parent._quarantined
        return self.execute()

    # -- helpers for subclasses -------------------------------------------
    def add_processed(self, n: int) -> None:
        """Count ``n`` more rows as processed."""
        self._processed_set = True
        self.log.n_processed += int(n)

    def heartbeat(self, rows: int = 0) -> None:
        """Report ``rows`` more done to the live status; raise :class:`RunCancelled` if asked to stop.

        The engine calls it at every chunk boundary; long custom steps should too.
        """
        if self.status is not None:
            self.status.update(rows=rows)
            self.status.check_cancel()

    def add_errors(self, n: int) -> None:
        """Count ``n`` rows rejected without keeping them (prefer :meth:`quarantine`)."""
        self.log.n_errors += int(n)

    def quarantine(self, rows: pd.DataFrame) -> None:
        """Keep rejected rows (columns ``file``, ``line``, ``column``, ``value``, ``reason``) and count them.

        They are stored with the run record, even when the run fails.
        """
        if len(rows):
            self.add_errors(len(rows))
            self._quarantined.append(rows)

    def record_load(self, result: LoadResult | Iterable[LoadResult] | None) -> None:
        """Add the counts of one or more loads to the run log."""
        for r in _load_results(result):
            self.log.n_inserted += r.n_inserted
            self.log.n_updated += r.n_updated
            self.log.n_deleted += r.n_deleted

    def step(self, name: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``func`` as a measured step called ``name`` and return its value."""
        step_log = StepLog(name=f"{self.step_prefix}{name}")
        self.log.steps.append(step_log)
        if self.status is not None:
            self.status.update(step=step_log.name, force=True)
        with measure() as m:
            value = func(*args, **kwargs)
        if _load_results(value):
            self.record_load(value)
        _accumulate(step_log, m, value)
        self._log_step(step_log)
        return value

    def _log_step(self, step_log: StepLog) -> None:
        fields = {"run_id": self.log.run_id, "pipeline": self.log.pipeline, **vars(step_log)}
        fields["step"] = fields.pop("name")
        logger.info(
            "run %s %s step %s: %.3f s, %s rows, peak %.0f MB",
            self.log.run_id, self.log.pipeline, step_log.name, step_log.duration_s,
            step_log.n_rows, step_log.peak_rss_mb, extra={"dw": fields},
        )  # fmt: skip

    # -- running -----------------------------------------------------------
    def run(self, *, raise_errors: bool = True, triggered_by: str = "") -> RunLog:
        """Execute the pipeline atomically and return its :class:`RunLog`.

        Args:
            raise_errors: re-raise a failure after recording it (default);
                when False, return the failed log instead.
            triggered_by: who or what asked (user name, ``cron``, ``celery``).

        Raises:
            PipelineLocked: another run of this pipeline is in progress
                (checked before anything is recorded or written).
        """
        with pipeline_lock(self.name, using=self.using):
            return self._run_locked(raise_errors=raise_errors, triggered_by=triggered_by)

    def _run_locked(self, *, raise_errors: bool, triggered_by: str) -> RunLog:
        from dw_analytics.warehouse.models import PipelineRun

        self.log = RunLog(pipeline=self.name, started_at=timezone.now(), parameters=_jsonable(self.params))
        self._processed_set = False
        self._quarantined: list[pd.DataFrame] = []
        record = PipelineRun.objects.create(
            pipeline=self.name,
            status=PipelineRun.Status.RUNNING,
            started_at=self.log.started_at,
            parameters=self.log.parameters,
            triggered_by=triggered_by,
        )
        self.log.run_id = record.pk
        # We hold the pipeline's lock: any other "running" record of it belongs to a dead process.
        PipelineRun.objects.filter(pipeline=self.name, status=PipelineRun.Status.RUNNING).exclude(pk=record.pk).update(
            status=PipelineRun.Status.FAILED,
            finished_at=self.log.started_at,
            error=f"Abandoned: its process ended without finishing (killed or crashed); found by run {record.pk}",
        )
        self.status = LiveStatus(record.pk, using=self.using)
        failure: BaseException | None = None
        try:
            with transaction.atomic(using=self.using):
                self.log.result = self.execute()
            if type(self).publish is not BasePipeline.publish:
                self.step("publish", self.publish, self.log.result)
            self.log.status = "succeeded"
        except BaseException as exc:  # recorded, then re-raised below as asked
            failure = exc
            self.log.status = "cancelled" if isinstance(exc, RunCancelled) else "failed"
            self.log.error = f"{type(exc).__name__}: {exc}"
            self.log.traceback = traceback.format_exc()
        self.log.finished_at = timezone.now()
        self.log.duration_s = round((self.log.finished_at - self.log.started_at).total_seconds(), 6)
        self.log.peak_rss_mb = max((s.peak_rss_mb for s in self.log.steps), default=0.0)
        self.status.close()
        self.status = None
        _save_record(record, self.log, self._quarantined)
        if failure is not None and self.log.status == "failed":
            _notify_failure(self.log)
        if failure is not None and (raise_errors or not isinstance(failure, Exception)):
            raise failure
        return self.log


def _load_results(value: Any) -> list[LoadResult]:
    if isinstance(value, LoadResult):
        return [value]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, LoadResult) for v in value):
        return list(value)
    return []


def _accumulate(step_log: StepLog, m: Measurement, value: Any = None) -> None:
    """Add a measured call to a step: durations add up, the peak is the max."""
    step_log.duration_s = round(step_log.duration_s + m.duration_s, 6)
    step_log.peak_rss_mb = round(max(step_log.peak_rss_mb, m.peak_rss_mb), 1)
    rows = len(value) if isinstance(value, pd.DataFrame) else sum(r.n_written for r in _load_results(value)) or None
    if rows is not None:
        step_log.n_rows = (step_log.n_rows or 0) + rows


def _save_record(record: Any, log: RunLog, quarantined: list[pd.DataFrame]) -> None:
    fields = [
        "status", "finished_at", "duration_s", "n_processed", "n_errors", "n_inserted",
        "n_updated", "n_deleted", "peak_rss_mb",
    ]  # fmt: skip
    for name in fields:
        setattr(record, name, getattr(log, name))
    record.steps = [vars(s) for s in log.steps]
    record.error = log.error or ""
    record.traceback = log.traceback or ""
    record.save(update_fields=[*fields, "steps", "error", "traceback"])
    if quarantined:
        from dw_analytics.load.models import write_model
        from dw_analytics.warehouse.models import QuarantinedRow

        rows = pd.concat(quarantined, ignore_index=True)
        text_columns = ["file", "column", "value", "reason"]
        frame = rows.reindex(columns=text_columns).astype("string").fillna("")
        frame["line"] = rows["line"].astype("Int64") if "line" in rows else pd.array([None] * len(rows), dtype="Int64")
        frame["run_id"] = record.pk
        write_model(frame, QuarantinedRow, mode="append", using=record._state.db)


def _notify_failure(log: RunLog) -> None:
    logger.error(
        "run %s %s failed: %s",
        log.run_id,
        log.pipeline,
        log.error,
        extra={
            "dw": {
                "run_id": log.run_id,
                "pipeline": log.pipeline,
                "status": "failed",
                "error": log.error,
            }
        },
    )
    mail_admins(
        f"pipeline {log.pipeline} failed (run {log.run_id})",
        f"Run {log.run_id} of {log.pipeline} failed at {log.finished_at:%Y-%m-%d %H:%M:%S %Z}.\n\n"
        f"{log.error}\n\n{log.traceback}",
        fail_silently=True,
    )


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(params, default=str))
