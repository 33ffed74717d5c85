"""The Dask engine: the same transforms, one task per partition, on a cluster.

Why futures over pandas partitions rather than ``dask.dataframe``: the
partition tasks call the project's own functions on plain pandas frames
(``read_csv_chunks``, ``read_sql``, ``partial_aggregate``,
``fact_sales_chunks``, the Parquet writer), so a result cannot differ from
the pandas engine's, and decimal money never goes through Dask's dtype
inference (``dask.dataframe`` 2026.8 cannot even tokenize a plain ``sum()`` of
a ``decimal128`` column). Each task streams its partition in chunks, so a
worker's memory is bounded by a chunk whatever the partition size; only small
things travel: partial aggregates (one row per group), write statistics,
reports.

Reductions are trees: partial aggregates are merged ``FAN_IN`` at a time on
the workers with ``transforms.rollup.combine_partials`` (associative and
exact), and only the final partial reaches the client for ``finalize``.

A worker that dies mid-task (killed, out of memory) is replaced by its nanny
and the scheduler reruns its tasks elsewhere (up to
``distributed.scheduler.allowed-failures`` times). Part files have names that
depend only on the partition, so a rerun replaces what the dead attempt left;
if the task keeps killing workers, the operation raises :class:`EngineError`
and nothing is published.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pandas as pd
import psutil
from distributed import Client, LocalCluster, as_completed, wait
from distributed.scheduler import KilledWorker

from dw_analytics.engines import _tasks
from dw_analytics.engines.base import Engine, EngineError, TableSource
from dw_analytics.engines.snapshot import staged_folder, staged_snapshot
from dw_analytics.engines.sources import MappedPartition, Partition, PartitionReport
from dw_analytics.load.parquet import DEFAULT_KEEP_VERSIONS, ParquetWriteResult, SnapshotResult
from transforms import sales as _sales
from transforms.exceptions import TransformError
from transforms.rollup import finalize, normalize_aggs, rollup

__all__ = ["FAN_IN", "DaskEngine", "dask_client"]

#: partial aggregates merged per combine task
FAN_IN = 8


@contextmanager
def dask_client(
    scheduler: str | None = None,
    *,
    n_workers: int | None = None,
    memory_limit: str | float | None = None,
    timeout: str = "20s",
    **cluster_options: Any,
) -> Iterator[Client]:
    """A Dask client: connected to ``scheduler``, or to a new LocalCluster sized to this machine.

    Without an address the LocalCluster has one worker *process* per core
    (``n_workers``), one thread each (our tasks release little of the GIL
    outside Arrow), and a memory limit per worker of the machine's memory
    divided among them; both are shut down when the block ends.

    Args:
        scheduler: ``tcp://host:8786`` of a running ``dask-scheduler``, or None.
        n_workers: LocalCluster workers (default: the number of cores).
        memory_limit: LocalCluster limit per worker (``"4GiB"``, bytes);
            default total memory / workers.
        timeout: how long to try reaching ``scheduler``.
        **cluster_options: more ``LocalCluster`` options.

    Yields:
        The connected :class:`distributed.Client`.

    Raises:
        EngineError: the scheduler cannot be reached (``retryable``).

    Example:
        >>> with dask_client() as client:  # doctest: +SKIP
        ...     DaskEngine(client).rollup(parts, by="categoria", n=("id", "size"))
    """
    if scheduler:
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise EngineError(
                f"cannot reach the Dask scheduler at {scheduler} ({exc}); start it with "
                "'dask scheduler' or fix DW_DASK_SCHEDULER / --scheduler",
                retryable=True,
                engine="dask",
                scheduler=scheduler,
            ) from exc
        try:
            yield client
        finally:
            client.close()
        return
    n_workers = n_workers or os.cpu_count() or 1
    if memory_limit is None:
        memory_limit = int(psutil.virtual_memory().total / n_workers)
    options = {
        "n_workers": n_workers,
        "threads_per_worker": 1,
        "processes": True,
        "memory_limit": memory_limit,
        "dashboard_address": ":0",  # a free port: never collide with another cluster
    } | cluster_options
    with LocalCluster(**options) as cluster, Client(cluster) as client:
        yield client


def _first(pair: tuple[Any, Any]) -> Any:
    return pair[0]


def _second(pair: tuple[Any, Any]) -> Any:
    return pair[1]


def _sales_head(value: tuple[list[str], pd.DataFrame, int] | None) -> tuple[list[str], int] | None:
    return None if value is None else (value[0], value[2])


def _sales_partial(value: tuple[list[str], pd.DataFrame, int] | None) -> pd.DataFrame | None:
    return None if value is None else value[1]


class DaskEngine(Engine):
    """Runs each partition as a task on the client's cluster; same results as :class:`PandasEngine`.

    Args:
        client: a connected :class:`distributed.Client` (see :func:`dask_client`).

    Example:
        >>> with dask_client() as client:  # doctest: +SKIP
        ...     engine = DaskEngine(client)
        ...     by_category = engine.sales_by_category(csv_partitions("orders/", decimals={"total": 2, "custo": 2}))
    """

    name = "dask"

    def __init__(self, client: Client) -> None:
        super().__init__()
        self.client = client

    # -- plumbing ------------------------------------------------------------------------
    def _submit_each(
        self,
        func: Callable[..., Any],
        partitions: Sequence[Partition],
        *args: Any,
        indexed: bool = False,
    ) -> list[Any]:
        """One task ``func(partition, [index,] *args)`` per partition; big arguments are sent once."""
        run = uuid.uuid4().hex[:8]
        args = tuple(self._scattered(a) for a in args)
        bound: dict[int, Any] = {}
        futures = []
        for index, partition in enumerate(partitions):
            light, arguments = partition, None
            if isinstance(partition, MappedPartition) and partition.args:
                if id(partition.args) not in bound:  # map_partitions shares one args tuple
                    bound[id(partition.args)] = self._scattered(partition.args, always=True)
                light, arguments = replace(partition, args=()), bound[id(partition.args)]
            futures.append(
                self.client.submit(
                    _tasks.run_bound,
                    func,
                    light,
                    arguments,
                    *((index, *args) if indexed else args),
                    key=f"{func.__name__}-{run}-{index:05d}",
                    pure=False,
                )
            )
        return futures

    def _scattered(self, value: Any, *, always: bool = False) -> Any:
        """``value`` as a future when it is big (a DataFrame, or ``always``): sent to the cluster once.

        Not ``client.scatter``: scattered data lost with a dead worker cannot be
        recomputed, whereas a task holding the value is simply re-run.
        """
        if always or isinstance(value, pd.DataFrame):
            return self.client.submit(_tasks.identity, value, pure=False)
        return value

    def _settle(self, futures: Sequence[Any], partitions: Sequence[Partition]) -> None:
        """Wait until every task has finished (well or not), then raise the first failure.

        Waiting for all of them first matters: no task may still be writing
        when the caller removes a staging folder.
        """
        wait(list(futures))
        for index, future in enumerate(futures):
            if future.status != "finished":
                raise self._failure(future, partitions[index])

    def _failure(self, future: Any, partition: Partition) -> BaseException:
        """The exception to raise for a task that did not finish (its own, or an EngineError)."""
        if future.status == "cancelled":
            return EngineError(
                f"the task of partition {partition.label} was cancelled (the client lost its "
                "scheduler?); nothing was published",
                retryable=True,
                engine=self.name,
                partition=partition.label,
            )
        exc = future.exception()
        if isinstance(exc, KilledWorker):
            error = EngineError(
                f"partition {partition.label} killed its worker repeatedly (out of memory, or the "
                f"worker process was killed) and was given up: {exc}. Nothing was published.",
                retryable=True,
                engine=self.name,
                partition=partition.label,
            )
            error.__cause__ = exc
            return error
        return exc

    def _run(
        self, func: Callable[..., Any], partitions: Sequence[Partition], *args: Any
    ) -> tuple[list[Any], list[Any]]:
        """Submit ``func`` per partition; return futures of the values and of the reports."""
        self.reports = []
        pairs = self._submit_each(func, partitions, *args)
        values = [self.client.submit(_first, f, pure=False) for f in pairs]
        reports = [self.client.submit(_second, f, pure=False) for f in pairs]
        self._settle(pairs, partitions)
        self.reports = list(self.client.gather(reports))
        return values, pairs

    def _tree(self, partials: list[Any], by: Sequence[str], aggs: dict[str, tuple[str, str]]) -> Any:
        """Combine partial-aggregate futures on the workers, ``FAN_IN`` at a time, to one future."""
        level = 0
        while len(partials) > 1:
            partials = [
                self.client.submit(
                    _tasks.combine_some,
                    partials[i : i + FAN_IN],
                    list(by),
                    aggs,
                    key=f"combine-{uuid.uuid4().hex[:8]}-{level}-{i}",
                )
                for i in range(0, len(partials), FAN_IN)
            ]
            level += 1
        return partials[0]

    # -- operations --------------------------------------------------------------------------
    def collect(self, partitions: Sequence[Partition]) -> pd.DataFrame:
        values, _ = self._run(_tasks.partition_frame, partitions)
        frames = [f for f in self.client.gather(values) if f is not None]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def rollup(self, partitions: Sequence[Partition], by: str | Sequence[str], **aggs: tuple[str, str]) -> pd.DataFrame:
        keys = [by] if isinstance(by, str) else list(by)
        named = normalize_aggs(aggs)
        if not partitions:
            return rollup([], keys, **named)
        values, _ = self._run(_tasks.partition_partial, partitions, keys, named)
        partial = self.client.gather(self._tree(values, keys, named))
        if partial is None:
            return rollup([], keys, **named)
        return finalize(partial, keys, named)

    def sales_by_category(
        self,
        partitions: Sequence[Partition],
        products: pd.DataFrame | None = None,
        categories: pd.DataFrame | None = None,
        *,
        computed_at: pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        values, _ = self._run(_tasks.partition_sales_partial, partitions, products)
        heads = self.client.gather([self.client.submit(_sales_head, v) for v in values])
        present = [h for h in heads if h is not None]
        if not present:  # no order at all: the pandas path's empty table
            return _sales.sales_by_category([], products, categories, computed_at=computed_at)
        keys = present[0][0]
        for index, head in enumerate(heads):
            if head is not None and head[0] != keys:
                raise TransformError(
                    f"partition {partitions[index].label} groups by {head[0]} but others by {keys}: "
                    "every partition must have the same columns",
                    table="orders",
                )
        if sum(h[1] for h in present) > _sales._CENTS_BOUND:
            raise TransformError(
                "money totals could exceed int64 cents (about 92 quadrillion BRL); aggregate fewer rows",
                table="orders",
            )
        partials = [self.client.submit(_sales_partial, v) for v in values]
        partial = self.client.gather(self._tree(partials, keys, _sales._AGGS))
        # The tail of transforms.sales.sales_by_category, from the combined exact sums.
        result = _sales.sales_measures(finalize(partial, keys, _sales._AGGS), keys)
        if "categoria" not in keys:
            names = _sales._names(result["categoria_id"], categories, "categories")
            result.insert(1, "categoria", names)
        result = result[[*dict.fromkeys(["categoria_id", "categoria", *keys]), *_sales.SALES_MEASURES]]
        if computed_at is not None:
            result["atualizado_em"] = pd.Timestamp(computed_at)
        return result

    def _write_parts(
        self,
        partitions: Sequence[Partition],
        table_dir: os.PathLike[str],
        partition_cols: Sequence[str] | None,
        write_options: dict[str, Any],
    ) -> list[dict[str, Any]]:
        self.reports = []
        futures = self._submit_each(
            _tasks.write_partition,
            partitions,
            str(table_dir),
            list(partition_cols or []),
            write_options,
            indexed=True,
        )
        position = {future.key: index for index, future in enumerate(futures)}
        results: dict[int, Any] = {}
        # Take each result as soon as it exists and release it: a write is a side effect,
        # and a result kept on a worker that dies later would be recomputed (written again).
        for future, value in as_completed(futures, with_results=True, raise_errors=False):
            index = position[future.key]
            if future.status != "finished":
                failure = self._failure(future, partitions[index])
                self.client.cancel(futures)
                raise failure
            results[index] = value
            future.release()
        ordered = [results[i] for i in range(len(partitions))]
        self.reports = [report for _, report in ordered]
        return [stats for stats, _ in ordered]

    def write_parquet_partitioned(
        self,
        partitions: Sequence[Partition],
        path: str | os.PathLike[str],
        partition_cols: Sequence[str] | None = None,
        *,
        run_id: str | int | None = None,
        **options: Any,
    ) -> ParquetWriteResult:
        with staged_folder(path, run_id=run_id, **options) as stage:
            folder = stage.table_dir("data")
            parts = self._write_parts(partitions, folder, partition_cols, stage.write_options)
            stage.add_parts("data", parts, partition_cols, [p.label for p in partitions])
        return stage.result

    def publish_snapshot(
        self,
        tables: Mapping[str, TableSource],
        folder: str | os.PathLike[str],
        *,
        partition_cols: Mapping[str, Sequence[str]] | None = None,
        keep: int = DEFAULT_KEEP_VERSIONS,
        run_id: str | int | None = None,
        **options: Any,
    ) -> SnapshotResult:
        partition_cols = dict(partition_cols or {})
        reports: list[PartitionReport] = []
        with staged_snapshot(folder, keep=keep, run_id=run_id, **options) as stage:
            for name, data in tables.items():
                cols = partition_cols.get(name)
                if isinstance(data, pd.DataFrame):
                    stage.write_table(name, data, cols)
                    continue
                table_dir = stage.table_dir(name)
                parts = self._write_parts(data, table_dir, cols, stage.write_options)
                reports += self.reports
                stage.add_parts(name, parts, cols, [p.label for p in data])
        self.reports = reports
        return stage.result
