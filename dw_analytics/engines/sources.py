"""Partitioned sources: the units of work an engine hands to its workers.

A *partition* is a small, picklable description of where one slice of the
data lives (a CSV file, a Parquet file of a hive dataset, a primary-key range
of a database table). It is cheap to ship to a Dask worker, which then opens
it and streams it chunk by chunk through the same extractors the pandas path
uses (:func:`~dw_analytics.extract.csv.read_csv_chunks`,
:func:`~dw_analytics.extract.sql.read_sql`, ``pyarrow.parquet``): memory per
worker is bounded by a chunk, never by the partition, and money stays exact
(``pd.ArrowDtype(pa.decimal128(p, s))``).

Workers are separate processes, possibly on other machines: a partition names
files by path (they must be on storage every worker sees) and databases by URL
(never a Django connection).

Example:
    >>> parts = csv_partitions("orders/*.csv", decimals={"total": 2})  # doctest: +SKIP
    >>> parts = parquet_partitions("orders_parquet/")  # doctest: +SKIP
    >>> parts = sql_partitions("postgresql://u@db/shop", "sales_pedido", n_partitions=8)  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import sqlalchemy as sa

from dw_analytics.core.exceptions import ConfigurationError
from dw_analytics.extract.exceptions import ExtractError, SourceNotFoundError

__all__ = [
    "CsvPartition",
    "MappedPartition",
    "ParquetPartition",
    "Partition",
    "PartitionReport",
    "SqlPartition",
    "csv_partitions",
    "database_url",
    "map_partitions",
    "parquet_partitions",
    "sql_partitions",
]

DEFAULT_CHUNKSIZE = 200_000


@dataclass
class PartitionReport:
    """What reading one partition did: rows, rejected rows and time, filled as it streams.

    Attributes:
        label: the partition's name (file path, key range).
        n_rows: rows read from the source (yielded plus quarantined).
        n_errors: rows quarantined.
        quarantine: the quarantined rows (``file``, ``line``, ``column``,
            ``value``, ``reason``), or None.
        seconds: wall time of the task on its worker.
        worker: the worker that ran it (Dask), or "" in-process.
        peak_rss_mb: peak RSS of the process that ran it, when known.

    Example:
        >>> PartitionReport("orders-1.csv").n_rows
        0
    """

    label: str
    n_rows: int = 0
    n_errors: int = 0
    quarantine: pd.DataFrame | None = None
    seconds: float = 0.0
    worker: str = ""
    peak_rss_mb: float = 0.0


@runtime_checkable
class Partition(Protocol):
    """One slice of a source; ``read`` streams its rows as DataFrames."""

    label: str

    def read(self, report: PartitionReport) -> Iterator[pd.DataFrame]:
        """Yield the partition's rows in chunks, counting them in ``report``."""
        ...


# -- CSV ------------------------------------------------------------------------------
@dataclass(frozen=True)
class CsvPartition:
    """One CSV file, read with :func:`~dw_analytics.extract.csv.read_csv_chunks` on the worker.

    Example:
        >>> CsvPartition("/data/orders-2024.csv", {"decimals": {"total": 2}}).label
        '/data/orders-2024.csv'
    """

    path: str
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.path

    def read(self, report: PartitionReport) -> Iterator[pd.DataFrame]:
        from dw_analytics.extract.csv import read_csv_chunks

        with read_csv_chunks(self.path, **self.options) as chunks:
            yield from chunks
            report.n_rows += chunks.n_rows
            report.n_errors += chunks.n_errors
            if chunks.n_errors:
                report.quarantine = chunks.quarantine


def csv_partitions(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], **read_options: Any
) -> list[CsvPartition]:
    """One partition per CSV file of a folder, a glob or a list of paths.

    Args:
        paths: a folder (every ``*.csv``, ``*.csv.gz`` and ``*.zip`` in it), a
            glob such as ``"orders/2024-*.csv"``, one file, or a list of those.
        **read_options: passed to ``read_csv_chunks`` on the worker
            (``sep``, ``decimal``, ``decimals={"total": 2}``, ``dates``, ``chunksize``...).

    Returns:
        The partitions, sorted by path.

    Raises:
        SourceNotFoundError: no file matches.

    Example:
        >>> parts = csv_partitions("orders/", decimals={"total": 2, "custo": 2})  # doctest: +SKIP
        >>> len(parts)  # doctest: +SKIP
        12
    """
    read_options.setdefault("chunksize", DEFAULT_CHUNKSIZE)
    patterns = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    files: list[str] = []
    for pattern in patterns:
        path = Path(pattern).expanduser()
        if path.is_dir():
            found = [p for p in sorted(path.iterdir()) if p.is_file() and p.name.endswith((".csv", ".csv.gz", ".zip"))]
            files += [str(p.absolute()) for p in found]
        elif path.is_file():
            files.append(str(path.absolute()))
        else:
            files += [str(Path(p).absolute()) for p in sorted(glob.glob(str(path)))]
    if not files:
        raise SourceNotFoundError(
            f"No CSV file matches {[str(p) for p in patterns]}; give a folder, a glob "
            "such as 'orders/*.csv' or file paths",
            file=str(patterns[0]),
        )
    return [CsvPartition(f, dict(read_options)) for f in sorted(dict.fromkeys(files))]


# -- Parquet -------------------------------------------------------------------------
def _pandas_dtype(arrow_type: pa.DataType) -> Any:
    # Exact decimals and nullable integers / booleans stay pyarrow-backed (as
    # read_csv_chunks gives them); timestamps become numpy datetime64, which the
    # transforms' date arithmetic reads without a per-value conversion.
    if pa.types.is_decimal(arrow_type) or pa.types.is_integer(arrow_type) or pa.types.is_boolean(arrow_type):
        return pd.ArrowDtype(arrow_type)
    return None


@dataclass(frozen=True)
class ParquetPartition:
    """One Parquet file of a (possibly hive-partitioned) dataset, read in record batches.

    Decimals come back as exact ``pd.ArrowDtype(decimal128(p, s))``, integers
    and booleans pyarrow-backed (nulls kept, never float), timestamps as
    ``datetime64[us]`` (tz-aware when stored so), text as ``str``; the hive
    keys of the file's folder (``year=2024/``) are added as constant columns
    of their dataset type.

    Example:
        >>> ParquetPartition("/d/year=2024/part-0.parquet").label
        '/d/year=2024/part-0.parquet'
    """

    path: str
    columns: tuple[str, ...] | None = None
    keys: tuple[tuple[str, Any, pa.DataType], ...] = ()
    batch_size: int = DEFAULT_CHUNKSIZE

    @property
    def label(self) -> str:
        return self.path

    def read(self, report: PartitionReport) -> Iterator[pd.DataFrame]:
        key_names = {name for name, _, _ in self.keys}
        columns = None if self.columns is None else [c for c in self.columns if c not in key_names]
        parquet = pq.ParquetFile(self.path)
        for batch in parquet.iter_batches(batch_size=self.batch_size, columns=columns):
            table = pa.Table.from_batches([batch])
            for name, value, arrow_type in self.keys:
                wanted = self.columns is None or name in self.columns
                if wanted and name not in table.column_names:
                    constant = pa.array([value] * table.num_rows, type=arrow_type)
                    table = table.append_column(name, constant)
            if self.columns is not None:
                table = table.select(list(self.columns))
            report.n_rows += table.num_rows
            yield table.to_pandas(types_mapper=_pandas_dtype)


def parquet_partitions(
    path: str | os.PathLike[str],
    *,
    columns: Sequence[str] | None = None,
    batch_size: int = DEFAULT_CHUNKSIZE,
    partitioning: str | None = "hive",
) -> list[ParquetPartition]:
    """One partition per Parquet file of a dataset folder (hive ``key=value`` folders understood).

    Args:
        path: a folder (searched recursively) or one ``.parquet`` file.
        columns: columns to read (hive keys included); default all.
        batch_size: rows per DataFrame chunk.
        partitioning: ``"hive"`` (default) or None for plain folders.

    Returns:
        The partitions, sorted by file path.

    Raises:
        SourceNotFoundError: the path does not exist or holds no Parquet file.

    Example:
        >>> parts = parquet_partitions("orders_parquet/", columns=["id", "total"])  # doctest: +SKIP
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise SourceNotFoundError(f"Parquet dataset {root} does not exist", file=str(root))
    dataset = ds.dataset(
        str(root),
        format="parquet",
        partitioning=partitioning,
        exclude_invalid_files=False,
        ignore_prefixes=[".", "_"],
    )
    parts = []
    for fragment in dataset.get_fragments():
        keys = ds.get_partition_keys(fragment.partition_expression)
        typed = tuple((name, value, dataset.schema.field(name).type) for name, value in sorted(keys.items()))
        parts.append(
            ParquetPartition(
                str(Path(fragment.path).absolute()),
                columns=tuple(columns) if columns is not None else None,
                keys=typed,
                batch_size=batch_size,
            )
        )
    if not parts:
        raise SourceNotFoundError(f"No Parquet file in {root}", file=str(root))
    return sorted(parts, key=lambda p: p.path)


# -- SQL --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SqlPartition:
    """A primary-key range ``lo <= key < hi`` of a query, read with :func:`read_sql` on the worker.

    ``query`` must contain the ``:lo`` and ``:hi`` bind parameters (built by
    :func:`sql_partitions`). The worker opens its own connection from ``url``.

    Example:
        >>> SqlPartition("sqlite:////tmp/x.db", "SELECT * FROM t WHERE id >= :lo AND id < :hi",
        ...              1, 1001).label
        't [1, 1001)'
    """

    url: str
    query: str
    lo: int
    hi: int
    chunksize: int = DEFAULT_CHUNKSIZE
    name: str = ""

    @property
    def label(self) -> str:
        table = self.name or self.query.split(" FROM ", 1)[-1].split()[0]
        return f"{table} [{self.lo}, {self.hi})"

    def read(self, report: PartitionReport) -> Iterator[pd.DataFrame]:
        from dw_analytics.extract.sql import read_sql

        chunks = read_sql(self.url, self.query, chunksize=self.chunksize, params={"lo": self.lo, "hi": self.hi})
        for chunk in chunks:
            report.n_rows += len(chunk)
            if len(chunk):
                yield chunk


def sql_partitions(
    url: str,
    table: str,
    *,
    columns: Sequence[str] | None = None,
    key: str = "id",
    n_partitions: int | None = None,
    rows_per_partition: int = 2_000_000,
    where: str | None = None,
    chunksize: int = DEFAULT_CHUNKSIZE,
) -> list[SqlPartition]:
    """Split a table into primary-key ranges read in parallel (``min``/``max`` of ``key`` first).

    The key range ``[min, max]`` is cut into ``n_partitions`` equal ranges
    (default: one per ``rows_per_partition`` rows, at least one). Each worker
    then runs ``SELECT columns FROM table WHERE key >= :lo AND key < :hi [AND where]``
    through :func:`~dw_analytics.extract.sql.read_sql` (streamed, typed from
    the database's column types, so ``numeric(p, s)`` stays exact).

    Args:
        url: SQLAlchemy URL every worker can reach (``postgresql://u@db/shop``);
            see :func:`database_url` for Django's.
        table: table name; ``schema.table`` accepted.
        columns: columns to select (default all, ``*``).
        key: an integer, indexed column (the primary key).
        n_partitions: number of ranges.
        rows_per_partition: used when ``n_partitions`` is not given.
        where: an extra SQL condition (trusted text, e.g. ``"total > 0"``).
        chunksize: rows per DataFrame on the worker.

    Returns:
        The partitions; none when the table is empty.

    Raises:
        ExtractError: the database cannot be reached or the table/key is unknown.

    Example:
        >>> parts = sql_partitions("postgresql://postgres@127.0.0.1/test", "sales_pedido",
        ...                        columns=["id", "total"], n_partitions=4)  # doctest: +SKIP
    """
    if n_partitions is not None and n_partitions < 1:
        raise ConfigurationError(f"n_partitions must be at least 1, got {n_partitions}")
    engine = sa.create_engine(_sqlalchemy_url(url))
    try:
        quote = engine.dialect.identifier_preparer.quote
        table_sql = ".".join(quote(part) for part in table.split("."))
        key_sql = quote(key)
        select = ", ".join(quote(c) for c in columns) if columns else "*"
        condition = f" AND ({where})" if where else ""
        with engine.connect() as connection:
            low, high, count = connection.execute(
                sa.text(
                    f"SELECT MIN({key_sql}), MAX({key_sql}), COUNT(*) FROM {table_sql}"
                    + (f" WHERE {where}" if where else "")
                )
            ).one()
    except sa.exc.SQLAlchemyError as exc:
        raise ExtractError(
            f"Cannot read the key range of {table}.{key} at {_safe_url(url)}: {exc}",
            table=table,
            column=key,
            retryable=isinstance(exc, sa.exc.OperationalError),
        ) from exc
    finally:
        engine.dispose()
    if low is None:
        return []
    n = n_partitions or max(1, -(-int(count) // rows_per_partition))
    low, high = int(low), int(high) + 1
    n = max(1, min(n, high - low))
    step = -(-(high - low) // n)
    query = f"SELECT {select} FROM {table_sql} WHERE {key_sql} >= :lo AND {key_sql} < :hi{condition}"
    return [
        SqlPartition(url, query, lo, min(lo + step, high), chunksize=chunksize, name=table)
        for lo in range(low, high, step)
    ]


def database_url(using: str = "default") -> str:
    """The SQLAlchemy URL of a Django database, for workers that cannot share its connection.

    Example:
        >>> database_url()  # doctest: +SKIP
        'postgresql+psycopg://postgres@127.0.0.1:5432/test'
    """
    from django.db import connections

    config = connections[using].settings_dict
    engine = config["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{config['NAME']}"
    if "postgresql" in engine:
        url = sa.engine.URL.create(
            "postgresql+psycopg",
            username=config.get("USER") or None,
            password=config.get("PASSWORD") or None,
            host=config.get("HOST") or None,
            port=int(config["PORT"]) if config.get("PORT") else None,
            database=config["NAME"],
        )
        return url.render_as_string(hide_password=False)
    raise ConfigurationError(f"database {using!r} uses {engine}; partitioned reads support SQLite and PostgreSQL")


def _sqlalchemy_url(url: str) -> sa.engine.URL:
    parsed = sa.engine.make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _safe_url(url: str) -> str:
    try:
        return _sqlalchemy_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<invalid URL>"


# -- derived partitions ------------------------------------------------------------------
ChunkStream = Callable[..., Iterable[pd.DataFrame]]


@dataclass(frozen=True)
class MappedPartition:
    """A partition whose chunks pass through ``stream(chunks, *args)`` on the worker.

    ``stream`` takes the source's chunk iterator and yields new chunks (for
    example :func:`transforms.star.fact_sales_chunks`, which builds its lookups
    once per partition). It must be a module-level function so it pickles.

    Example:
        >>> from transforms.star import fact_sales_chunks
        >>> facts = MappedPartition(CsvPartition("o.csv"), fact_sales_chunks, (dp, dc, dk))  # doctest: +SKIP
    """

    source: Partition
    stream: ChunkStream
    args: tuple[Any, ...] = ()

    @property
    def label(self) -> str:
        return self.source.label

    def read(self, report: PartitionReport) -> Iterator[pd.DataFrame]:
        yield from self.stream(self.source.read(report), *self.args)


def map_partitions(partitions: Iterable[Partition], stream: ChunkStream, *args: Any) -> list[MappedPartition]:
    """Wrap every partition so its chunks go through ``stream(chunks, *args)`` (lazily).

    Example:
        >>> def big_orders(chunks):
        ...     for c in chunks:
        ...         yield c[c["quantidade"] > 10]
        >>> parts = map_partitions(csv_partitions("orders/"), big_orders)  # doctest: +SKIP
    """
    return [MappedPartition(p, stream, tuple(args)) for p in partitions]


def read_timed(partition: Partition, report: PartitionReport) -> Iterator[pd.DataFrame]:
    """``partition.read(report)``, adding the elapsed time to ``report.seconds`` at the end."""
    started = time.perf_counter()
    try:
        yield from partition.read(report)
    finally:
        report.seconds += time.perf_counter() - started
