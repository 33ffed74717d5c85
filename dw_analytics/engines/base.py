"""The engine interface, the pandas engine (default) and the engine switch.

An engine runs the project's transforms over a *partitioned* source (a list
of :mod:`dw_analytics.engines.sources` partitions). Two engines share one
interface:

* :class:`PandasEngine` -- the chunked pandas path, in this process: the
  partitions' chunks are chained and handed to the very functions the rest of
  the project calls (``transforms.rollup.rollup``,
  ``transforms.sales.sales_by_category``, ``load.parquet.publish_snapshot``).
* :class:`~dw_analytics.engines.dask.DaskEngine` -- the same computations,
  one task per partition on a Dask cluster, combined with the same exact
  partial aggregates (``partial_aggregate`` / ``combine_partials`` /
  ``finalize``), written by the workers in parallel and published atomically.

Pick one with :func:`open_engine` (``settings.DW_ENGINE``, default
``"pandas"``; ``settings.DW_DASK_SCHEDULER`` for a cluster address).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import pandas as pd

from dw_analytics.core.exceptions import ConfigurationError, DWError
from dw_analytics.engines.sources import (
    MappedPartition,
    Partition,
    PartitionReport,
    map_partitions,
    read_timed,
)
from dw_analytics.load.parquet import (
    DEFAULT_KEEP_VERSIONS,
    ParquetWriteResult,
    SnapshotResult,
    publish_snapshot,
    write_parquet,
)
from transforms.rollup import rollup
from transforms.sales import sales_by_category
from transforms.star import fact_sales_chunks

__all__ = [
    "ENGINES",
    "Engine",
    "EngineError",
    "EngineSession",
    "PandasEngine",
    "fact_sales_stream",
    "open_engine",
]

ENGINES = ("pandas", "dask")

#: a table for publish_snapshot: a small frame written by the client, or partitions
TableSource = pd.DataFrame | Sequence[Partition]


class EngineError(DWError):
    """A partition could not be processed (its worker died for good, the cluster is unreachable).

    Carries ``partition`` (the source's label) and ``engine``; ``retryable`` is
    True when the same run may succeed later (a worker lost, a scheduler down).
    """


def fact_sales_stream(orders: Iterator[pd.DataFrame], dims: Mapping[str, pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """:func:`transforms.star.fact_sales_chunks` over one partition's order chunks.

    The dimension lookups are built once per partition, then every order chunk
    becomes one fact chunk.

    Example:
        >>> facts = fact_sales_stream(iter([orders]), dims)  # doctest: +SKIP
    """
    return fact_sales_chunks(orders, dims["dim_product"], dims["dim_customer"], dims["dim_category"])


class Engine:
    """What every engine offers. Results are identical whichever engine runs them.

    Attributes:
        name: ``"pandas"`` or ``"dask"``.
        reports: one :class:`PartitionReport` per partition of the last
            operation (rows, quarantined rows, seconds, worker, peak RSS).
    """

    name = ""

    def __init__(self) -> None:
        self.reports: list[PartitionReport] = []

    # -- what the engine runs ---------------------------------------------------------
    def collect(self, partitions: Sequence[Partition]) -> pd.DataFrame:
        """All rows of the partitions as one DataFrame, in partition order (small data only)."""
        raise NotImplementedError

    def rollup(self, partitions: Sequence[Partition], by: str | Sequence[str], **aggs: tuple[str, str]) -> pd.DataFrame:
        """:func:`transforms.rollup.rollup` over every partition; same result, same dtypes."""
        raise NotImplementedError

    def sales_by_category(
        self,
        partitions: Sequence[Partition],
        products: pd.DataFrame | None = None,
        categories: pd.DataFrame | None = None,
        *,
        computed_at: pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        """:func:`transforms.sales.sales_by_category` over every partition, exact to the cent."""
        raise NotImplementedError

    def write_parquet_partitioned(
        self,
        partitions: Sequence[Partition],
        path: str | os.PathLike[str],
        partition_cols: Sequence[str] | None = None,
        *,
        run_id: str | int | None = None,
        **options: Any,
    ) -> ParquetWriteResult:
        """Write every partition's rows as Parquet under ``path``, published in one atomic rename."""
        raise NotImplementedError

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
        """Publish tables as one versioned snapshot (``CURRENT`` written last).

        A table is a DataFrame (written by this process) or a list of
        partitions (written where the engine runs them).
        """
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------
    def fact_sales(self, partitions: Sequence[Partition], dims: Mapping[str, pd.DataFrame]) -> list[MappedPartition]:
        """The sales fact of every order partition, lazily: one fact partition per order partition.

        Nothing runs yet; pass the result to :meth:`publish_snapshot`,
        :meth:`write_parquet_partitioned`, :meth:`rollup` or :meth:`collect`,
        which build each fact partition where it is consumed (on the worker).

        Args:
            partitions: order partitions (``id``, ``cliente_id``, ``produto_id``,
                ``quantidade``, ``total``, ``custo``, ``criado_em``).
            dims: ``dim_product``, ``dim_customer``, ``dim_category`` frames.

        Example:
            >>> facts = engine.fact_sales(orders, dims)  # doctest: +SKIP
            >>> engine.publish_snapshot({"fact_sales": facts, **dims}, "star")  # doctest: +SKIP
        """
        needed = {"dim_product", "dim_customer", "dim_category"}
        missing = sorted(needed - set(dims))
        if missing:
            raise ConfigurationError(f"fact_sales needs the dimension frames {missing}")
        slim = {name: dims[name] for name in sorted(needed)}
        return map_partitions(partitions, fact_sales_stream, slim)

    @property
    def n_rows(self) -> int:
        """Rows read by the last operation."""
        return sum(r.n_rows for r in self.reports)

    @property
    def n_errors(self) -> int:
        """Rows quarantined by the last operation."""
        return sum(r.n_errors for r in self.reports)

    @property
    def quarantine(self) -> pd.DataFrame:
        """Rows quarantined by the last operation (``file``, ``line``, ``column``, ``value``, ``reason``)."""
        frames = [r.quarantine for r in self.reports if r.quarantine is not None]
        if not frames:
            return pd.DataFrame(columns=["file", "line", "column", "value", "reason"])
        return pd.concat(frames, ignore_index=True)

    def close(self) -> None:
        """Release the engine's resources (nothing for pandas)."""


class PandasEngine(Engine):
    """The chunked pandas path in this process: partitions are read one after another.

    Example:
        >>> engine = PandasEngine()
        >>> engine.rollup([], by="k", n=("id", "size")).columns.tolist()
        ['k', 'n']
    """

    name = "pandas"

    def _chunks(self, partitions: Sequence[Partition]) -> Iterator[pd.DataFrame]:
        self.reports = []
        for partition in partitions:
            report = PartitionReport(partition.label, worker=f"local:{os.getpid()}")
            self.reports.append(report)
            yield from read_timed(partition, report)

    def collect(self, partitions: Sequence[Partition]) -> pd.DataFrame:
        frames = list(self._chunks(partitions))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def rollup(self, partitions: Sequence[Partition], by: str | Sequence[str], **aggs: tuple[str, str]) -> pd.DataFrame:
        return rollup(self._chunks(partitions), by, **aggs)

    def sales_by_category(
        self,
        partitions: Sequence[Partition],
        products: pd.DataFrame | None = None,
        categories: pd.DataFrame | None = None,
        *,
        computed_at: pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        return sales_by_category(self._chunks(partitions), products, categories, computed_at=computed_at)

    def write_parquet_partitioned(
        self,
        partitions: Sequence[Partition],
        path: str | os.PathLike[str],
        partition_cols: Sequence[str] | None = None,
        *,
        run_id: str | int | None = None,
        **options: Any,
    ) -> ParquetWriteResult:
        return write_parquet(self._chunks(partitions), path, partition_cols, run_id=run_id, **options)

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
        sources = {
            name: data if isinstance(data, pd.DataFrame) else self._chunks(data) for name, data in tables.items()
        }
        return publish_snapshot(sources, folder, keep=keep, run_id=run_id, partition_cols=partition_cols, **options)


@contextmanager
def open_engine(name: str | None = None, *, scheduler: str | None = None) -> Iterator[Engine]:
    """The engine ``name`` (default ``settings.DW_ENGINE``), closed when the block ends.

    ``"dask"`` connects to ``scheduler`` (default ``settings.DW_DASK_SCHEDULER``;
    empty: a LocalCluster sized to this machine, see
    :func:`~dw_analytics.engines.dask.dask_client`).

    Raises:
        ConfigurationError: an unknown engine name.

    Example:
        >>> with open_engine("pandas") as engine:
        ...     engine.name
        'pandas'
    """
    name = name or _setting("DW_ENGINE", "pandas") or "pandas"
    if name not in ENGINES:
        raise ConfigurationError(f"unknown engine {name!r} (DW_ENGINE / --engine); choose one of {', '.join(ENGINES)}")
    if name == "pandas":
        yield PandasEngine()
        return
    from dw_analytics.engines.dask import DaskEngine, dask_client

    with dask_client(scheduler or _setting("DW_DASK_SCHEDULER", "") or None) as client:
        engine = DaskEngine(client)
        try:
            yield engine
        finally:
            engine.close()


class EngineSession:
    """An engine opened on first use and closed with the session (what a pipeline holds).

    A pipeline that never asks for its engine starts no cluster.

    Example:
        >>> with EngineSession("pandas") as session:
        ...     session.engine.name
        'pandas'
    """

    def __init__(self, name: str | None = None, *, scheduler: str | None = None) -> None:
        if name is not None and name not in ENGINES:
            raise ConfigurationError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
        self.name = name
        self.scheduler = scheduler or None
        self._stack = ExitStack()
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        """The engine, opened now if it is not yet."""
        if self._engine is None:
            self._engine = self._stack.enter_context(open_engine(self.name, scheduler=self.scheduler))
        return self._engine

    def close(self) -> None:
        """Close the engine (and its Dask client / LocalCluster) if it was opened."""
        self._engine = None
        self._stack.close()

    def __enter__(self) -> EngineSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _setting(name: str, default: str) -> str:
    try:
        from django.conf import settings

        return getattr(settings, name, default)
    except Exception:  # noqa: BLE001 - Django not configured (scripts, workers): the environment
        return os.environ.get(name, default)
