"""The work done for one partition, on whichever process runs it (a Dask worker or the client).

Every function here is module-level (it pickles by reference), takes a
partition description plus small arguments, streams the partition chunk by
chunk and returns a small result and a :class:`PartitionReport`. They reuse
the project's own pieces -- ``transforms.rollup``'s partial aggregates,
``transforms.sales``' exact cents aggregation, ``load.parquet``'s writer -- so
the pandas and Dask engines compute with the same code.
"""

from __future__ import annotations

import os
import resource
import socket
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from dw_analytics.engines.sources import Partition, PartitionReport, read_timed
from dw_analytics.load import parquet as _parquet
from dw_analytics.load.exceptions import LoadError
from dw_analytics.load.paths import remove_path, temporary_sibling
from transforms import sales as _sales
from transforms.exceptions import MissingColumnsError
from transforms.rollup import combine_partials, partial_aggregate

#: partials buffered before they are merged, as in ``transforms.rollup.rollup``
COMBINE_EVERY = 8

# Partial aggregates arrive unpickled from other workers with buffers Arrow's
# hash aggregation finds "poorly aligned" (it warns once per batch); let it copy
# them silently instead. Read by Arrow once per process, at its first group-by.
os.environ.setdefault("ACERO_ALIGNMENT_HANDLING", "reallocate")


def _finish(report: PartitionReport) -> PartitionReport:
    # ru_maxrss is KiB on Linux: the peak of this (worker) process so far.
    report.peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    report.worker = f"{socket.gethostname()}:{os.getpid()}"
    return report


def identity(value: Any) -> Any:
    """The value itself: a task that holds shared task arguments on the cluster."""
    return value


def run_bound(func: Callable[..., Any], partition: Partition, bound: tuple[Any, ...] | None, *args: Any) -> Any:
    """``func(partition, *args)`` after giving a :class:`MappedPartition` its arguments back.

    The Dask engine ships a mapped partition's arguments (the dimension
    frames of a fact build) to each worker once, scattered, instead of
    pickling them into every task.
    """
    if bound is not None:
        partition = replace(partition, args=bound)
    return func(partition, *args)


def stream_partial(
    chunks: Iterable[pd.DataFrame], by: Sequence[str], aggs: dict[str, tuple[str, str]]
) -> pd.DataFrame | None:
    """Partial aggregate of a chunk stream (None when no chunk), merged every few chunks."""
    pending: list[pd.DataFrame] = []
    for chunk in chunks:
        pending.append(partial_aggregate(chunk, by, aggs))
        if len(pending) >= COMBINE_EVERY:
            pending = [combine_partials(pending, by, aggs)]
    return combine_partials(pending, by, aggs) if pending else None


def combine_some(
    partials: list[pd.DataFrame | None], by: Sequence[str], aggs: dict[str, tuple[str, str]]
) -> pd.DataFrame | None:
    """:func:`combine_partials` over the non-empty partials (None when there is none)."""
    present = [p for p in partials if p is not None]
    return combine_partials(present, by, aggs) if present else None


def partition_partial(
    partition: Partition, by: Sequence[str], aggs: dict[str, tuple[str, str]]
) -> tuple[pd.DataFrame | None, PartitionReport]:
    """The rollup partial aggregate of one partition."""
    report = PartitionReport(partition.label)
    partial = stream_partial(read_timed(partition, report), by, aggs)
    return partial, _finish(report)


def sales_keys(columns: Sequence[str], has_products: bool) -> list[str]:
    """The grouping keys ``transforms.sales.sales_by_category`` picks for these order columns."""
    has_name = "categoria" in columns
    if "categoria_id" not in columns and not has_products:
        if not has_name:
            raise MissingColumnsError(
                "sales_by_category needs the orders' categoria_id / categoria columns or the products frame",
                table="orders",
                columns=["categoria_id"],
            )
        return ["categoria"]
    return ["categoria_id", "categoria"] if has_name else ["categoria_id"]


def partition_sales_partial(
    partition: Partition, products: pd.DataFrame | None
) -> tuple[tuple[list[str], pd.DataFrame, int] | None, PartitionReport]:
    """Exact cents partial of ``sales_by_category`` for one partition.

    Returns ``(keys, partial, cents_bound)`` -- the bound is the sum of
    ``|cents|`` seen, which the client adds up to prove the int64 sums cannot
    overflow, as ``sales_by_category`` does over all chunks -- or None for an
    empty partition.
    """
    report = PartitionReport(partition.label)
    chunks = read_timed(partition, report)
    first = next(chunks, None)
    if first is None:
        return None, _finish(report)
    keys = sales_keys(list(first.columns), products is not None)
    category_of = None if "categoria_id" in first.columns else _sales._category_lookup(products)
    guard = _sales._CentsGuard()
    slim = (_sales._slim(chunk, keys, guard, category_of=category_of) for chunk in _chain(first, chunks))
    partial = stream_partial(slim, keys, _sales._AGGS)
    return (keys, partial, guard.bound), _finish(report)


def partition_frame(partition: Partition) -> tuple[pd.DataFrame | None, PartitionReport]:
    """The whole partition as one DataFrame (for small results and tests)."""
    report = PartitionReport(partition.label)
    chunks = list(read_timed(partition, report))
    frame = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else next(iter(chunks), None)
    return frame, _finish(report)


def write_partition(
    partition: Partition,
    index: int,
    table_dir: str,
    partition_cols: list[str],
    write_options: dict[str, Any],
) -> tuple[dict[str, Any], PartitionReport]:
    """Write one partition's Parquet part files into ``table_dir`` (a folder being staged).

    Without ``partition_cols`` the partition becomes ``part-<index>.parquet``;
    with them, hive folders ``k=v/part-<index>-<n>.parquet``. Files are
    written under hidden temporary names and renamed into place, and their
    names depend only on ``index``, so a retried task (its worker died)
    replaces what a dead attempt may have left. An empty partition writes
    nothing. Files are not fsynced one by one: the client fsyncs the whole
    version folder once before publishing it (``atomic_output``), which makes
    every part durable with one pass instead of one disk flush per task.

    Returns:
        ``{"files": [relative paths], "n_rows", "n_row_groups", "bytes", "schema"}``
        and the report.
    """
    report = PartitionReport(partition.label)
    folder = Path(table_dir)
    if not folder.is_dir():  # the client gave up on this publish and removed its stage
        raise LoadError(f"staging folder {folder} is gone: the publish was abandoned", target=str(folder))
    target = f"{folder}:{partition.label}"
    opts = _parquet._options(target=target, **write_options)
    chunks = read_timed(partition, report)
    first = next((c for c in chunks if len(c)), None)
    stats = {"files": [], "n_rows": 0, "n_row_groups": 0, "bytes": 0, "schema": []}
    if first is None:
        return stats, _finish(report)
    data = _while_staged(_chain(first, chunks), folder)
    if not partition_cols:
        final = folder / f"part-{index:05d}.parquet"
        tmp = temporary_sibling(final)
        try:
            written = _parquet._write_dataset(data, tmp, [], opts, target=target)
            os.replace(tmp, final)
        except BaseException:
            remove_path(tmp)
            raise
        files = [final.name]
    else:
        stage = folder / f".stage-{index:05d}-{uuid.uuid4().hex[:8]}.tmp"
        stage.mkdir()
        try:
            written = _parquet._write_dataset(data, stage, partition_cols, opts, target=target)
            files = []
            for relative in written.files:
                source = stage / relative
                number = source.stem.rsplit("-", 1)[-1]
                moved = Path(relative).parent / f"part-{index:05d}-{number}.parquet"
                (folder / moved.parent).mkdir(parents=True, exist_ok=True)
                os.replace(source, folder / moved)
                files.append(moved.as_posix())
        finally:
            remove_path(stage)
    stats.update(
        files=files,
        n_rows=written.n_rows,
        n_row_groups=written.n_row_groups,
        bytes=written.bytes_written,
        schema=[{"name": c["name"], "type": c["type"]} for c in written.schema],
    )
    return stats, _finish(report)


def _chain(first: pd.DataFrame, rest: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    yield first
    yield from rest


def _while_staged(chunks: Iterator[pd.DataFrame], folder: Path) -> Iterator[pd.DataFrame]:
    """Stop writing as soon as the client removes the staging folder (it abandoned the publish)."""
    for chunk in chunks:
        if not folder.is_dir():
            raise LoadError(f"staging folder {folder} is gone: the publish was abandoned", target=str(folder))
        yield chunk
