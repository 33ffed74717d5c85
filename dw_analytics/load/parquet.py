"""DataFrames → Parquet files that Power BI, DuckDB and pyarrow read the same way.

Two entry points:

* :func:`write_parquet` writes one table (a single file, or a hive-partitioned
  folder) and publishes it atomically.
* :func:`publish_snapshot` writes several tables (a star schema) as one
  versioned snapshot and switches a ``CURRENT`` pointer last, so a reader never
  mixes two runs; :func:`read_snapshot` / :func:`open_snapshot` follow it.

What the files look like (see ``/work/shared/POWERBI.md`` for the why):

============================  ================================================
Arrow / pandas input          written as
============================  ================================================
timestamp, any unit           ``timestamp[us]``, never ns nor INT96. tz-aware
                              columns are converted to ``timezone`` (default
                              ``America/Sao_Paulo``) and stored as naive wall
                              time (``isAdjustedToUTC=false``); naive columns
                              are taken to be in that zone already.
decimal                       ``decimal128(19, s)`` with ``s <= 4`` (Power BI
                              Fixed decimal). A wider scale is reduced only if
                              no value loses a digit; values beyond Power BI's
                              range (±922,337,203,685,477.5807) are refused.
                              ``money_as_float=True`` writes float64 instead.
unsigned integers             ``int64`` (values above 2**63-1 are refused)
large_string / string_view    ``string``; category → its values
date64, time[ns]              ``date32``, ``time64[us]``
all-null column               ``string`` (or the type ``schema=`` names)
binary, nested, duration      refused with a message naming the column
============================  ================================================

File settings: Parquet format version ``"1.0"`` (its dictionary encoding is the
one every reader knows), ``data_page_version="1.0"``, snappy, row groups of
:data:`DEFAULT_ROW_GROUP_SIZE` rows, dictionary encoding only for columns whose
distinct values are at most half the rows of the first chunk, no pandas or
``ARROW:schema`` metadata. The file's key-value metadata carries
``dw_analytics.run_id``, ``dw_analytics.created_at`` (UTC, ISO 8601),
``dw_analytics.version``, ``dw_analytics.num_rows``, ``dw_analytics.timezone``,
``dw_analytics.partition_cols`` and ``dw_analytics.schema`` (JSON: table
description, column names, types and descriptions), plus your ``metadata``.

Power BI: for one file use *Get data → Parquet*; for a partitioned folder or a
snapshot use *Get data → Folder*, keep ``Extension = ".parquet"`` and combine
with ``Parquet.Document([Content])``. Partition columns stay real columns in
every file because Power BI does not turn ``year=2026`` folder names into
columns.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import re
import shutil
import time
from collections import OrderedDict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dw_analytics.load.base import LoadResult
from dw_analytics.load.exceptions import LoadError, LoadValidationError, SnapshotError
from dw_analytics.load.paths import (
    TEMP_SUFFIX,
    atomic_output,
    output_root,
    remove_path,
    replace_symlink,
    resolve_output_path,
    write_text_atomic,
)

__all__ = [
    "ParquetWriteResult",
    "Snapshot",
    "SnapshotResult",
    "list_snapshot_versions",
    "open_snapshot",
    "publish_snapshot",
    "read_snapshot",
    "write_parquet",
]

DEFAULT_TIMEZONE = "America/Sao_Paulo"
# Big enough for good compression and min/max statistics, small enough that the
# buffered row group (the writer's whole working memory) stays tens of MB.
DEFAULT_ROW_GROUP_SIZE = 262_144
PARQUET_FORMAT_VERSION = "1.0"
DATA_PAGE_VERSION = "1.0"
COMPRESSIONS = ("snappy", "gzip", "zstd", "none")
MONEY_PRECISION = 19
MAX_MONEY_SCALE = 4
# Power BI's Fixed decimal is a 64-bit integer of 1/10,000 units.
POWER_BI_DECIMAL_LIMIT = Decimal("922337203685477.5807")
INT64_MAX = 2**63 - 1
DICTIONARY_MAX_DISTINCT_RATIO = 0.5
DICTIONARY_SAMPLE_ROWS = 20_000
DEFAULT_MAX_OPEN_FILES = 64
DEFAULT_KEEP_VERSIONS = 3
METADATA_PREFIX = "dw_analytics."
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"

SNAPSHOT_POINTER = "CURRENT"
SNAPSHOT_LINK = "current"
SNAPSHOT_MANIFEST = "_manifest.json"
SNAPSHOT_FORMAT = "dw_analytics.snapshot/1"
VERSION_PREFIX = "v="
# Leftovers of a crashed publish (the process was killed) older than this are removed.
STALE_TEMP_AGE_S = 24 * 3600
_TABLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_RUN_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")

DataSource = pd.DataFrame | pa.Table | pa.RecordBatch | Iterable[pd.DataFrame | pa.Table | pa.RecordBatch]


@dataclass
class ParquetWriteResult(LoadResult):
    """What :func:`write_parquet` wrote.

    ``target`` is the published path, ``n_inserted`` the rows written and
    ``duration_s`` the wall time (the :class:`LoadResult` fields); the rest
    describes the files.

    Attributes:
        files: absolute paths of the data files (one, or one per partition part).
        n_row_groups: row groups over all files.
        bytes_written: total size of the data files.
        schema: ``[{"name", "type", "description"}]`` as written.

    Example:
        >>> r = ParquetWriteResult(target="/out/a.parquet", n_inserted=2)
        >>> r.n_written
        2
    """

    files: list[str] = field(default_factory=list)
    n_row_groups: int = 0
    bytes_written: int = 0
    schema: list[dict[str, str]] = field(default_factory=list)


@dataclass
class SnapshotResult(LoadResult):
    """What :func:`publish_snapshot` published.

    ``target`` is the snapshot folder, ``n_inserted`` the rows over all tables.

    Attributes:
        version: the new version's folder name (``v=20260115T031500123456Z``).
        version_path: its absolute path.
        tables: per table, ``n_rows`` and ``files`` (relative to ``version_path``).
        removed_versions: older versions deleted by the retention rule.

    Example:
        >>> SnapshotResult(target="/out/sales", version="v=1").version
        'v=1'
    """

    version: str = ""
    version_path: str = ""
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    removed_versions: list[str] = field(default_factory=list)


@dataclass
class _Options:
    timezone: str = DEFAULT_TIMEZONE
    money_as_float: bool = False
    schema: pa.Schema | None = None
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE
    compression: str = "snappy"
    description: str | None = None
    column_descriptions: Mapping[str, str] = field(default_factory=dict)
    run_id: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    max_open_files: int = DEFAULT_MAX_OPEN_FILES
    created_at: str = ""
    dictionary_columns: list[str] = field(default_factory=list)

    def validate(self, target: str) -> None:
        if self.row_group_size < 1:
            raise LoadValidationError(
                f"row_group_size must be a positive number of rows, got {self.row_group_size}",
                target=target,
            )
        if self.compression not in COMPRESSIONS:
            raise LoadValidationError(
                f"compression {self.compression!r} is not one of {', '.join(COMPRESSIONS)}",
                target=target,
            )
        if self.max_open_files < 1:
            raise LoadValidationError("max_open_files must be at least 1", target=target)
        try:
            pa.scalar(0, pa.timestamp("us", tz=self.timezone)).cast(pa.timestamp("us"))
        except (pa.ArrowException, ValueError) as exc:
            raise LoadValidationError(
                f"unknown time zone {self.timezone!r}; use an IANA name such as 'America/Sao_Paulo' or 'UTC' ({exc})",
                target=target,
            ) from exc
        if not self.created_at:
            self.created_at = dt.datetime.now(dt.UTC).isoformat()


@dataclass
class _DatasetStats:
    n_rows: int = 0
    files: list[str] = field(default_factory=list)  # relative to the dataset path
    n_row_groups: int = 0
    bytes_written: int = 0
    schema: list[dict[str, str]] = field(default_factory=list)


def write_parquet(
    df_or_chunks: DataSource,
    path: str | os.PathLike[str],
    partition_cols: Sequence[str] | None = None,
    *,
    timezone: str = DEFAULT_TIMEZONE,
    money_as_float: bool = False,
    schema: pa.Schema | None = None,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    compression: str = "snappy",
    description: str | None = None,
    column_descriptions: Mapping[str, str] | None = None,
    run_id: str | int | None = None,
    metadata: Mapping[str, str] | None = None,
    max_open_files: int = DEFAULT_MAX_OPEN_FILES,
) -> ParquetWriteResult:
    """Write a DataFrame (or a stream of chunks) as Parquet for Power BI, atomically.

    Chunks are streamed through a ``pyarrow.parquet.ParquetWriter``: memory is
    one chunk plus at most ``row_group_size`` buffered rows, whatever the total.
    Types are normalized as the module docstring's table says; the first chunk
    fixes the schema and later chunks are cast to it (a lossless cast only,
    otherwise :class:`LoadValidationError`). The index of a DataFrame is not
    written: ``reset_index()`` first if you need it.

    With ``partition_cols`` the output is a hive folder
    (``path/year=2026/month=1/part-00000.parquet``) whose files still contain the
    partition columns. One writer per partition is kept open, at most
    ``max_open_files`` at a time (the least recently used is closed and a later
    chunk of that partition starts a new ``part-0000N`` file); the rows
    buffered over all partitions never exceed ``row_group_size``.

    Publication is atomic: everything is written to a hidden temporary sibling
    and renamed over ``path`` at the end, so readers see the old output or the
    new one; on error the old output is untouched.

    Args:
        df_or_chunks: a DataFrame / Arrow table / record batch, or an iterable of them.
        path: file (or, with ``partition_cols``, folder) name under ``DW_OUTPUT_DIR``.
        partition_cols: columns to partition by (hive ``key=value`` folders).
        timezone: zone tz-aware timestamps are converted to before being stored
            as naive wall time. Business dates belong in ``America/Sao_Paulo``:
            Power BI shows stored values as they are, so that is what an analyst
            expects to see (Brazil has no daylight saving since 2019; before it,
            the repeated autumn hour is ambiguous in wall time).
        money_as_float: write decimal columns as float64 (Power BI "Decimal
            number") instead of exact ``decimal128(19, s)``.
        schema: Arrow types to cast the input to first (fixes all-null or
            inconsistent chunks).
        row_group_size: rows per row group.
        compression: ``snappy`` (default), ``zstd``, ``gzip`` or ``none``.
        description: a sentence describing the table (stored in the metadata).
        column_descriptions: column → description (stored in the metadata).
        run_id: the pipeline run that produced the file.
        metadata: extra string key-value pairs for the file footer.
        max_open_files: partition writers kept open at once.

    Returns:
        :class:`ParquetWriteResult` (a :class:`LoadResult`).

    Raises:
        OutputPathError: ``path`` escapes the output root.
        LoadValidationError: a column cannot be written faithfully (the message
            names the column, row and value), or no data and no ``schema``.
        LoadError: the write failed (disk full, permission...); nothing published.

    Example:
        >>> import pandas as pd, pyarrow as pa
        >>> from decimal import ROUND_DOWN, Decimal
        >>> df = pd.DataFrame({"total": pd.array([Decimal("10.50")], dtype=pd.ArrowDtype(pa.decimal128(12, 2)))})
        >>> write_parquet(df, "sales/total.parquet").n_inserted  # doctest: +SKIP
        1
    """
    started = time.perf_counter()
    target = resolve_output_path(path)
    opts = _options(
        timezone=timezone,
        money_as_float=money_as_float,
        schema=schema,
        row_group_size=row_group_size,
        compression=compression,
        description=description,
        column_descriptions=column_descriptions,
        run_id=run_id,
        metadata=metadata,
        max_open_files=max_open_files,
        target=str(target),
    )
    partitions = _partition_list(partition_cols, str(target))
    try:
        with atomic_output(target, directory=bool(partitions)) as tmp:
            stats = _write_dataset(df_or_chunks, tmp, partitions, opts, target=str(target))
    except LoadError:
        raise
    except (OSError, pa.ArrowException) as exc:
        raise LoadError(f"Writing Parquet {target} failed, nothing was published: {exc}", target=str(target)) from exc
    files = [str(target)] if not partitions else [str(target / rel) for rel in stats.files]
    return ParquetWriteResult(
        target=str(target),
        n_inserted=stats.n_rows,
        duration_s=time.perf_counter() - started,
        details={"partition_cols": partitions, "run_id": opts.run_id},
        files=files,
        n_row_groups=stats.n_row_groups,
        bytes_written=stats.bytes_written,
        schema=stats.schema,
    )


def _options(*, target: str, run_id: str | int | None, **kwargs: Any) -> _Options:
    kwargs["column_descriptions"] = dict(kwargs.get("column_descriptions") or {})
    kwargs["metadata"] = {str(k): str(v) for k, v in (kwargs.get("metadata") or {}).items()}
    opts = _Options(run_id=None if run_id is None else str(run_id), **kwargs)
    opts.validate(target)
    return opts


def _partition_list(partition_cols: Sequence[str] | None, target: str) -> list[str]:
    if partition_cols is None:
        return []
    if isinstance(partition_cols, str):
        partition_cols = [partition_cols]
    partitions = [str(c) for c in partition_cols]
    if len(set(partitions)) != len(partitions):
        raise LoadValidationError(f"partition_cols repeats a column: {partitions}", target=target)
    return partitions


# --------------------------------------------------------------------------- writing


def _write_dataset(
    data: DataSource, dest: Path, partitions: list[str], opts: _Options, *, target: str
) -> _DatasetStats:
    """Stream ``data`` into ``dest`` (a file, or a folder when partitioned)."""
    sinks: list[_FileSink | _PartitionedSink] = []
    try:
        return _stream_into(sinks, data, dest, partitions, opts, target)
    except BaseException:
        for sink in sinks:  # release file handles; the caller removes the files
            sink.abort()
        raise


def _stream_into(
    sinks: list[_FileSink | _PartitionedSink],
    data: DataSource,
    dest: Path,
    partitions: list[str],
    opts: _Options,
    target: str,
) -> _DatasetStats:
    sink: _FileSink | _PartitionedSink | None = None
    schema: pa.Schema | None = None
    row_offset = 0
    for chunk_index, raw in enumerate(_iter_tables(data, target)):
        table = _prepare(
            raw,
            opts,
            expected=schema,
            chunk_index=chunk_index,
            row_offset=row_offset,
            target=target,
        )
        if sink is None:
            schema = table.schema
            sink = _open_sink(dest, schema, partitions, opts, table, target)
            sinks.append(sink)
        sink.write(table)
        row_offset += table.num_rows
    if sink is None:
        if opts.schema is None:
            raise LoadValidationError(
                "No chunk arrived and no schema= was given, so there is nothing to describe the "
                "file with. Pass schema= to publish an empty table.",
                target=target,
            )
        table = _prepare(
            opts.schema.empty_table(),
            opts,
            expected=None,
            chunk_index=0,
            row_offset=0,
            target=target,
        )
        sink = _open_sink(dest, table.schema, partitions, opts, table, target)
        sinks.append(sink)
        sink.write(table)
    if isinstance(sink, _FileSink):
        return _stats(sink.path, [sink.close()], sink.described)
    return sink.close()


def _open_sink(
    dest: Path,
    schema: pa.Schema,
    partitions: list[str],
    opts: _Options,
    first: pa.Table,
    target: str,
) -> _FileSink | _PartitionedSink:
    missing = [c for c in partitions if c not in schema.names]
    if missing:
        raise LoadValidationError(
            f"partition_cols {missing} are not columns of the data (columns: {schema.names})",
            target=target,
            column=missing[0],
        )
    opts.dictionary_columns = _dictionary_columns(first)
    described = _describe_schema(schema, opts)
    if partitions:
        return _PartitionedSink(dest, schema, partitions, opts, described)
    return _FileSink(dest, schema, opts, described, partitions=[])


def _iter_tables(data: DataSource, target: str) -> Iterator[pa.Table]:
    if isinstance(data, pd.DataFrame | pa.Table | pa.RecordBatch):
        yield _to_arrow(data, 0, target)
        return
    if isinstance(data, str | bytes | os.PathLike | Mapping):
        raise LoadValidationError(
            f"Expected a DataFrame or an iterable of DataFrames, got {type(data).__name__}",
            target=target,
        )
    for chunk_index, chunk in enumerate(data):
        yield _to_arrow(chunk, chunk_index, target)


def _to_arrow(chunk: Any, chunk_index: int, target: str) -> pa.Table:
    if isinstance(chunk, pa.Table):
        table = chunk
    elif isinstance(chunk, pa.RecordBatch):
        table = pa.Table.from_batches([chunk])
    elif isinstance(chunk, pd.DataFrame):
        if not all(isinstance(c, str) for c in chunk.columns):
            chunk = chunk.rename(columns=str)
        duplicated = chunk.columns[chunk.columns.duplicated()].tolist()
        if duplicated:
            raise LoadValidationError(
                f"Chunk {chunk_index} has duplicated column names {duplicated}; rename them first",
                target=target,
                column=duplicated[0],
            )
        try:
            table = pa.Table.from_pandas(chunk, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise LoadValidationError(
                f"Chunk {chunk_index} cannot be converted to Arrow: {exc}. Give the column one "
                "type (for example astype('str') or a decimal ArrowDtype).",
                target=target,
            ) from exc
    else:
        raise LoadValidationError(
            f"Chunk {chunk_index} is a {type(chunk).__name__}; expected a pandas DataFrame or an Arrow table",
            target=target,
        )
    # Drop pandas / Arrow metadata: other readers must see plain Parquet types.
    return table.replace_schema_metadata(None)


def _prepare(
    table: pa.Table,
    opts: _Options,
    *,
    expected: pa.Schema | None,
    chunk_index: int,
    row_offset: int,
    target: str,
) -> pa.Table:
    """Normalize one chunk's types, then align it with the first chunk's schema."""
    if opts.schema is not None:
        table = _cast_to_user_schema(table, opts.schema, chunk_index, target)
    if expected is not None:
        table = _align_columns(table, expected, chunk_index, target)
    columns = []
    fields = []
    for i, name in enumerate(table.column_names):
        expected_type = expected.field(i).type if expected is not None else None
        column = _normalize_column(name, table.column(i), opts, expected_type, row_offset, target)
        if expected_type is not None and column.type != expected_type:
            column = _conform(name, column, expected_type, chunk_index, row_offset, target)
        columns.append(column)
        fields.append(pa.field(name, column.type))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _cast_to_user_schema(table: pa.Table, schema: pa.Schema, chunk_index: int, target: str) -> pa.Table:
    missing = [n for n in schema.names if n not in table.column_names]
    if missing:
        raise LoadValidationError(
            f"Chunk {chunk_index} lacks columns {missing} named in schema=",
            target=target,
            column=missing[0],
        )
    table = table.select(schema.names)
    try:
        return table.cast(pa.schema([pa.field(f.name, f.type) for f in schema]), safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise LoadValidationError(f"Chunk {chunk_index} does not fit schema=: {exc}", target=target) from exc


def _align_columns(table: pa.Table, expected: pa.Schema, chunk_index: int, target: str) -> pa.Table:
    if table.column_names == expected.names:
        return table
    missing = [n for n in expected.names if n not in table.column_names]
    extra = [n for n in table.column_names if n not in expected.names]
    if missing or extra:
        raise LoadValidationError(
            f"Chunk {chunk_index} has different columns than the first chunk "
            f"(missing {missing}, unexpected {extra}); every chunk must have the same columns",
            target=target,
            column=(missing or extra)[0],
        )
    return table.select(expected.names)


def _normalize_column(
    name: str,
    column: pa.ChunkedArray,
    opts: _Options,
    expected_type: pa.DataType | None,
    row_offset: int,
    target: str,
) -> pa.ChunkedArray:
    """One column in the types Power BI loads faithfully (see the module docstring)."""
    t = column.type
    if pa.types.is_dictionary(t):
        column = column.cast(t.value_type)
        t = column.type
    if pa.types.is_null(t):
        return column.cast(expected_type if expected_type is not None else pa.string())
    if pa.types.is_timestamp(t):
        if t.tz is not None:
            # Same instants labelled with the target zone, then its wall-clock time.
            column = pc.local_timestamp(column.cast(pa.timestamp(t.unit, tz=opts.timezone)))
        # ns → us drops sub-microsecond digits (Power BI keeps ~3 ms anyway).
        return column.cast(pa.timestamp("us"), safe=False) if column.type != pa.timestamp("us") else column
    if pa.types.is_date64(t):
        return column.cast(pa.date32())
    if pa.types.is_time64(t) and t.unit == "ns":
        return column.cast(pa.time64("us"), safe=False)
    if pa.types.is_decimal(t):
        return _normalize_decimal(name, column, opts, row_offset, target)
    if pa.types.is_unsigned_integer(t):
        if t.bit_width == 64:
            _refuse_where(
                pc.greater(column, pa.scalar(INT64_MAX, pa.uint64())),
                name,
                column,
                row_offset,
                target,
                "exceeds the int64 maximum (Power BI has no unsigned 64-bit numbers)",
            )
        return column.cast(pa.int64())
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return column.cast(pa.string())
    if pa.types.is_float16(t):
        return column.cast(pa.float32())
    if (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_binary_view(t)
    ):
        raise LoadValidationError(
            f"Column {name!r} is binary ({t}); Power BI cannot load binary columns. Drop it or "
            "encode it as text (for example base64) first.",
            target=target,
            column=name,
        )
    if pa.types.is_nested(t):
        raise LoadValidationError(
            f"Column {name!r} is nested ({t}); flatten it into plain columns first "
            "(Power BI loads nested columns as unusable records).",
            target=target,
            column=name,
        )
    if pa.types.is_duration(t) or pa.types.is_interval(t):
        raise LoadValidationError(
            f"Column {name!r} is a duration ({t}), which only Arrow readers understand; "
            "convert it to a number first, e.g. df[col].dt.total_seconds().",
            target=target,
            column=name,
        )
    return column


def _normalize_decimal(
    name: str, column: pa.ChunkedArray, opts: _Options, row_offset: int, target: str
) -> pa.ChunkedArray:
    t = column.type
    if opts.money_as_float:
        return column.cast(pa.float64())
    scale = min(t.scale, MAX_MONEY_SCALE)
    if scale < 0:
        scale = 0
    if t.scale > scale:
        rounded = pc.round(column, ndigits=scale)
        _refuse_where(
            pc.not_equal(rounded, column),
            name,
            column,
            row_offset,
            target,
            f"has more than {scale} decimal places (Power BI's fixed decimal keeps at most "
            f"{MAX_MONEY_SCALE}); round it first or pass money_as_float=True",
        )
    if t.precision - t.scale > MONEY_PRECISION - MAX_MONEY_SCALE:
        # The limit in the column's own type: mixing decimal types would widen past 38 digits.
        limit = pa.scalar(POWER_BI_DECIMAL_LIMIT.quantize(Decimal(1).scaleb(-t.scale), rounding=ROUND_DOWN), t)
        _refuse_where(
            pc.greater(pc.abs(column), limit),
            name,
            column,
            row_offset,
            target,
            f"is outside Power BI's fixed decimal range (±{POWER_BI_DECIMAL_LIMIT}); "
            "pass money_as_float=True to write it as a double",
        )
    return column.cast(pa.decimal128(MONEY_PRECISION, scale), safe=False)


def _refuse_where(
    mask: pa.ChunkedArray | pa.Array,
    name: str,
    column: pa.ChunkedArray,
    row_offset: int,
    target: str,
    problem: str,
) -> None:
    """Raise naming the first row where ``mask`` is true (nulls count as false)."""
    position = pc.index(pc.fill_null(mask, False), True).as_py()
    if position is None or position < 0:
        return
    row = row_offset + position
    value = column[position].as_py()
    raise LoadValidationError(
        f"Column {name!r}, row {row}: value {value} {problem}",
        target=target,
        column=name,
        rows=[row],
        value=value,
    )


def _conform(
    name: str,
    column: pa.ChunkedArray,
    expected_type: pa.DataType,
    chunk_index: int,
    row_offset: int,
    target: str,
) -> pa.ChunkedArray:
    """Cast a later chunk's column to the first chunk's type, losslessly or not at all."""
    t = column.type

    def family(x: pa.DataType) -> str:
        if pa.types.is_integer(x) or pa.types.is_decimal(x):
            return "exact"
        if pa.types.is_floating(x):
            return "float"
        return str(x)

    compatible = family(t) == family(expected_type) or (pa.types.is_integer(t) and pa.types.is_floating(expected_type))
    if compatible:
        try:
            return column.cast(expected_type, safe=True)
        except pa.ArrowInvalid as exc:
            raise LoadValidationError(
                f"Chunk {chunk_index} (rows from {row_offset}), column {name!r}: values of type "
                f"{t} do not fit the first chunk's type {expected_type}: {exc}. Pass schema= "
                "with a type wide enough for every chunk.",
                target=target,
                column=name,
            ) from exc
    raise LoadValidationError(
        f"Chunk {chunk_index} (rows from {row_offset}), column {name!r} has type {t} but the "
        f"first chunk's is {expected_type}. Give every chunk the same dtypes, or pass schema=.",
        target=target,
        column=name,
    )


def _dictionary_columns(table: pa.Table) -> list[str]:
    """Columns worth dictionary encoding: few distinct values in the first chunk."""
    sample = table.slice(0, DICTIONARY_SAMPLE_ROWS)
    chosen = []
    for name, column in zip(sample.column_names, sample.columns, strict=True):
        t = column.type
        if not (
            pa.types.is_string(t)
            or pa.types.is_integer(t)
            or pa.types.is_date(t)
            or pa.types.is_decimal(t)
            or pa.types.is_timestamp(t)
        ):
            continue
        n_distinct = pc.count_distinct(column, mode="all").as_py()
        if n_distinct <= max(1, DICTIONARY_MAX_DISTINCT_RATIO * len(column)):
            chosen.append(name)
    return chosen


def _describe_schema(schema: pa.Schema, opts: _Options) -> list[dict[str, str]]:
    return [
        {
            "name": f.name,
            "type": str(f.type),
            "description": opts.column_descriptions.get(f.name, ""),
        }
        for f in schema
    ]


def _version() -> str:
    from dw_analytics import __version__

    return __version__


class _FileSink:
    """One Parquet file; buffers small chunks into full row groups."""

    def __init__(
        self,
        path: Path,
        schema: pa.Schema,
        opts: _Options,
        described: list[dict[str, str]],
        *,
        partitions: list[str],
        relative_name: str = "",
    ) -> None:
        self.path = path
        self.relative_name = relative_name or path.name
        self._opts = opts
        self.described = described
        self._partitions = partitions
        self._pending: list[pa.Table] = []
        self.pending_rows = 0
        self.n_rows = 0
        self._writer = pq.ParquetWriter(
            path,
            schema,
            version=PARQUET_FORMAT_VERSION,
            data_page_version=DATA_PAGE_VERSION,
            compression=opts.compression,
            use_dictionary=opts.dictionary_columns,
            write_statistics=True,
            store_schema=False,
        )

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self._pending.append(table)
        self.pending_rows += table.num_rows
        if self.pending_rows >= self._opts.row_group_size:
            self.flush(full_groups_only=True)

    def flush(self, *, full_groups_only: bool = False) -> None:
        if not self.pending_rows:
            return
        size = self._opts.row_group_size
        buffered = pa.concat_tables(self._pending)
        n_out = (self.pending_rows // size) * size if full_groups_only else self.pending_rows
        if n_out:
            self._writer.write_table(buffered.slice(0, n_out), row_group_size=size)
            self.n_rows += n_out
        rest = buffered.slice(n_out)
        self._pending = [rest] if rest.num_rows else []
        self.pending_rows = rest.num_rows

    def close(self) -> tuple[str, int]:
        self.flush()
        self._writer.add_key_value_metadata(self._metadata())
        self._writer.close()
        return self.relative_name, self.n_rows

    def abort(self) -> None:
        """Close the file without finishing it (the caller deletes it)."""
        self._pending = []
        with contextlib.suppress(OSError, pa.ArrowException):
            self._writer.close()

    def _metadata(self) -> dict[str, str]:
        opts = self._opts
        described = {
            "description": opts.description or "",
            "timezone": opts.timezone,
            "columns": self.described,
        }
        kv = {
            f"{METADATA_PREFIX}run_id": opts.run_id or "",
            f"{METADATA_PREFIX}created_at": opts.created_at,
            f"{METADATA_PREFIX}version": _version(),
            f"{METADATA_PREFIX}num_rows": str(self.n_rows),
            f"{METADATA_PREFIX}timezone": opts.timezone,
            f"{METADATA_PREFIX}partition_cols": json.dumps(self._partitions),
            f"{METADATA_PREFIX}schema": json.dumps(described, ensure_ascii=False),
        }
        kv.update(opts.metadata)
        return kv


class _PartitionedSink:
    """Hive folders, one file writer per partition, bounded open files and buffered rows."""

    def __init__(
        self,
        root: Path,
        schema: pa.Schema,
        partitions: list[str],
        opts: _Options,
        described: list[dict[str, str]],
    ) -> None:
        self._root = root
        self._schema = schema
        self._partitions = partitions
        self._opts = opts
        self._described = described
        self._open: OrderedDict[str, _FileSink] = OrderedDict()
        self._next_part: dict[str, int] = {}
        self._closed: list[tuple[str, int]] = []

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        keys = table.select(self._partitions).to_pandas()
        groups = keys.groupby(self._partitions, sort=False, dropna=False, observed=True).indices
        for key, indices in groups.items():
            values = key if isinstance(key, tuple) else (key,)
            folder = "/".join(
                f"{quote(col, safe='')}={_partition_value(v)}" for col, v in zip(self._partitions, values, strict=True)
            )
            self._sink(folder).write(table.take(indices))
        self._bound_buffers()

    def _sink(self, folder: str) -> _FileSink:
        sink = self._open.get(folder)
        if sink is not None:
            self._open.move_to_end(folder)
            return sink
        if len(self._open) >= self._opts.max_open_files:
            _, oldest = self._open.popitem(last=False)
            self._closed.append(oldest.close())
        part = self._next_part.get(folder, 0)
        self._next_part[folder] = part + 1
        relative = f"{folder}/part-{part:05d}.parquet"
        path = self._root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        sink = _FileSink(
            path,
            self._schema,
            self._opts,
            self._described,
            partitions=self._partitions,
            relative_name=relative,
        )
        self._open[folder] = sink
        return sink

    def _bound_buffers(self) -> None:
        # Many partitions each holding a partial row group could add up to
        # far more than one row group: flush the biggest buffers first.
        while sum(s.pending_rows for s in self._open.values()) > self._opts.row_group_size:
            max(self._open.values(), key=lambda s: s.pending_rows).flush()

    def abort(self) -> None:
        """Close every open file without finishing it (the caller deletes them)."""
        while self._open:
            self._open.popitem(last=False)[1].abort()

    def close(self) -> _DatasetStats:
        while self._open:
            _, sink = self._open.popitem(last=False)
            self._closed.append(sink.close())
        return _stats(self._root, self._closed, self._described)


def _partition_value(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return HIVE_NULL
    text = value.isoformat() if isinstance(value, pd.Timestamp | dt.datetime | dt.date) else str(value)
    # Percent-encode '/', ':' and the like: valid folder names on every OS.
    return quote(text, safe=" -_.,")


def _stats(root: Path, closed: list[tuple[str, int]], described: list[dict[str, str]]) -> _DatasetStats:
    stats = _DatasetStats(schema=described)
    for relative, n_rows in sorted(closed):
        path = root / relative if root.is_dir() else root
        stats.files.append(relative)
        stats.n_rows += n_rows
        stats.n_row_groups += pq.ParquetFile(path).metadata.num_row_groups
        stats.bytes_written += path.stat().st_size
    return stats


# --------------------------------------------------------------------------- snapshots


def publish_snapshot(
    tables: Mapping[str, DataSource],
    folder: str | os.PathLike[str],
    *,
    keep: int = DEFAULT_KEEP_VERSIONS,
    run_id: str | int | None = None,
    partition_cols: Mapping[str, Sequence[str]] | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    money_as_float: bool = False,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    compression: str = "snappy",
    descriptions: Mapping[str, str] | None = None,
    metadata: Mapping[str, str] | None = None,
    reuse_partitions: Mapping[str, Collection[str]] | None = None,
    reuse_tables: Collection[str] = (),
) -> SnapshotResult:
    """Publish several tables (a star schema) as one versioned, all-or-nothing snapshot.

    Layout::

        folder/
          v=20260115T031500123456Z/      one folder per published version
            fact_sales.parquet            a table (or fact_sales/ when partitioned)
            dim_date.parquet
            _manifest.json                tables, files, row counts, schema, created_at
          CURRENT                         "v=20260115T031500123456Z" (the pointer)
          current -> v=20260115T...      symlink to the same version

    The version is written in a hidden temporary folder, fsynced and renamed
    into place; only then ``CURRENT`` is replaced atomically and the
    ``current`` symlink is swapped (``os.replace`` of a new link) — the pointer
    is written LAST, so a reader following it never sees a half-written or
    mixed snapshot. Then all but the newest ``keep`` versions are deleted (the
    current one never is), as are temporary leftovers of crashed publishes
    older than a day. If anything fails before the pointer switch, the
    temporary folder is removed and the previous snapshot stays current.

    Power BI: point a Folder query at ``folder/current/`` (a symlink is fine on
    a local disk and on an SMB share served from Linux, which resolves it on
    the server), filter ``Name = "fact_sales.parquet"`` (or the
    ``fact_sales/`` sub-folder when partitioned) and combine with
    ``Parquet.Document``. Every refresh then reads exactly one version.
    Python readers use :func:`read_snapshot`, which follows ``CURRENT``.

    Args:
        tables: table name → DataFrame or iterable of chunks. Names are file
            names: letters, digits, ``_``, ``-``, ``.``.
        folder: the snapshot folder under ``DW_OUTPUT_DIR``.
        keep: versions kept after publishing (at least 1).
        run_id: recorded in the manifest and every file; also appended to
            the version name.
        partition_cols: table name → partition columns, for the tables that
            should be hive-partitioned folders.
        timezone, money_as_float, row_group_size, compression: as in
            :func:`write_parquet`.
        descriptions: table name → description (stored in each file's metadata).
        metadata: extra key-value pairs for every file (also kept in the manifest).
        reuse_partitions: partitioned table name → partition folders
            (``"month_key=202401"``) to carry over unchanged from the current
            version, hard-linked (no copy, no rewrite). That table's data
            then holds only the other partitions' rows; an incremental
            refresh rewrites only the partitions it changed.
        reuse_tables: tables carried over whole from the current version,
            hard-linked with their manifest entry (leave them out of
            ``tables``): the tables a refresh did not change.

    Returns:
        :class:`SnapshotResult` (a :class:`LoadResult` whose ``n_inserted`` is
        the rows over all tables).

    Example:
        >>> publish_snapshot({"fact_sales": fact, "dim_date": dates}, "star")  # doctest: +SKIP
        >>> read_snapshot("star", "dim_date")  # doctest: +SKIP
    """
    started = time.perf_counter()
    root = resolve_output_path(folder)
    target = str(root)
    if keep < 1:
        raise LoadValidationError(f"keep must be at least 1, got {keep}", target=target)
    if not tables:
        raise LoadValidationError("publish_snapshot needs at least one table", target=target)
    partition_map = {str(k): _partition_list(v, target) for k, v in (partition_cols or {}).items()}
    unknown = sorted(set(partition_map) - set(tables))
    if unknown:
        raise LoadValidationError(f"partition_cols names unknown tables {unknown}", target=target)
    reuse = {name: set(folders) for name, folders in (reuse_partitions or {}).items() if folders}
    not_partitioned = sorted(set(reuse) - set(partition_map))
    if not_partitioned:
        raise LoadValidationError(
            f"reuse_partitions needs partitioned tables; {not_partitioned} are not", target=target
        )
    both = sorted(set(tables) & set(reuse_tables))
    if both:
        raise LoadValidationError(f"tables {both} are both given and in reuse_tables; give each once", target=target)
    for name in tables:
        _check_table_name(name, target)
    opts = _options(
        timezone=timezone,
        money_as_float=money_as_float,
        schema=None,
        row_group_size=row_group_size,
        compression=compression,
        description=None,
        column_descriptions=None,
        run_id=run_id,
        metadata=metadata,
        max_open_files=DEFAULT_MAX_OPEN_FILES,
        target=target,
    )
    root.mkdir(parents=True, exist_ok=True)
    previous = open_snapshot(root) if reuse or reuse_tables else None
    version = _new_version_name(root, opts.run_id)
    manifest: dict[str, Any] = {
        "format": SNAPSHOT_FORMAT,
        "version": version,
        "run_id": opts.run_id,
        "created_at": opts.created_at,
        "dw_analytics_version": _version(),
        "timezone": opts.timezone,
        "metadata": dict(metadata or {}),
        "tables": {},
    }
    try:
        with atomic_output(root / version, directory=True) as tmp:
            for name, data in tables.items():
                partitions = partition_map.get(name, [])
                opts.description = (descriptions or {}).get(name)
                dest = tmp / name if partitions else tmp / f"{name}.parquet"
                if partitions:
                    dest.mkdir()
                carried = previous.table_files(name, reuse[name]) if name in reuse else []
                if carried:
                    data, empty = _peek(data)
                    # Every partition may be carried over: describe an empty stream by them.
                    opts.schema = pq.read_schema(carried[0][1]) if empty else None
                stats = _write_dataset(data, dest, partitions, opts, target=f"{target}:{name}")
                opts.schema = None
                if carried:
                    stats = _link_partitions(carried, dest, stats, target=f"{target}:{name}")
                prefix = f"{name}/" if partitions else ""
                manifest["tables"][name] = {
                    "path": dest.name,
                    "files": [prefix + f for f in stats.files],
                    "n_rows": stats.n_rows,
                    "partition_cols": partitions,
                    "n_row_groups": stats.n_row_groups,
                    "bytes": stats.bytes_written,
                    "schema": [{"name": c["name"], "type": c["type"]} for c in stats.schema],
                }
            for name in reuse_tables:
                manifest["tables"][name] = _link_table(previous, name, tmp)
            (tmp / SNAPSHOT_MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        # The version is complete and durable; switching the pointer publishes it.
        try:
            write_text_atomic(root / SNAPSHOT_POINTER, version + "\n")
            replace_symlink(root / SNAPSHOT_LINK, version)
        except BaseException:
            if _current_version(root) != version:  # never published: not a version at all
                remove_path(root / version)
            raise
    except LoadError:
        raise
    except (OSError, pa.ArrowException) as exc:
        raise LoadError(
            f"Publishing snapshot {target} failed; the previous version is still current: {exc}",
            target=target,
        ) from exc
    removed = _apply_retention(root, keep, current=version)
    return SnapshotResult(
        target=target,
        n_inserted=sum(t["n_rows"] for t in manifest["tables"].values()),
        duration_s=time.perf_counter() - started,
        details={"run_id": opts.run_id, "created_at": opts.created_at},
        version=version,
        version_path=str(root / version),
        tables={k: {"n_rows": v["n_rows"], "files": v["files"]} for k, v in manifest["tables"].items()},
        removed_versions=removed,
    )


def _peek(data: DataSource) -> tuple[Iterator[Any], bool]:
    chunks = iter([data]) if isinstance(data, (pd.DataFrame, pa.Table)) else iter(data)
    first = next(chunks, None)
    return (iter(()), True) if first is None else (itertools.chain([first], chunks), False)


def _link_partitions(
    carried: list[tuple[str, Path]], dest: Path, stats: _DatasetStats, *, target: str
) -> _DatasetStats:
    """Hard-link carried partition files into a new version (copy where links are impossible)."""
    closed = [(f, pq.ParquetFile(dest / f).metadata.num_rows) for f in stats.files]
    for relative, source in carried:
        path = dest / relative
        if path.exists():
            raise LoadValidationError(
                f"partition file {relative} is both carried over and rewritten; leave its partition "
                "out of reuse_partitions or out of the data",
                target=target,
            )
        _link(source, path)
        closed.append((relative, pq.ParquetFile(path).metadata.num_rows))
    return _stats(dest, closed, stats.schema)


def _link_table(previous: Snapshot, name: str, dest: Path) -> dict[str, Any]:
    """Hard-link every file of table ``name`` of ``previous`` under ``dest``; return its manifest entry."""
    entry = previous._entry(name)
    for relative in entry["files"]:
        _link(previous.path / relative, dest / relative)
    return dict(entry)


def _link(source: Path, path: Path) -> None:
    """A hard link of a published file (a copy where links are impossible, e.g. across devices)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, path)
    except OSError:
        shutil.copy2(source, path)


def _check_table_name(name: str, target: str) -> None:
    if (
        not isinstance(name, str)
        or not _TABLE_NAME.match(name)
        or name.endswith(TEMP_SUFFIX)
        or name in (SNAPSHOT_MANIFEST, SNAPSHOT_POINTER, SNAPSHOT_LINK)
    ):
        raise LoadValidationError(
            f"Table name {name!r} cannot be a file name; use letters, digits, '_', '-' and '.' "
            "(for example 'fact_sales')",
            target=target,
            table=str(name),
        )


def _new_version_name(root: Path, run_id: str | None) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    name = VERSION_PREFIX + stamp
    if run_id:
        name += "_" + _RUN_ID_UNSAFE.sub("-", run_id)[:60]
    candidate, n = name, 1
    while (root / candidate).exists():
        n += 1
        candidate = f"{name}-{n}"
    return candidate


def list_snapshot_versions(folder: str | os.PathLike[str]) -> list[str]:
    """Published version names in a snapshot folder, oldest first.

    Example:
        >>> list_snapshot_versions("star")  # doctest: +SKIP
        ['v=20260114T031500000000Z', 'v=20260115T031500000000Z']
    """
    root = _resolve_read_path(folder)
    if not root.is_dir():
        return []
    return sorted(
        p.name for p in root.iterdir() if p.name.startswith(VERSION_PREFIX) and p.is_dir() and not p.is_symlink()
    )


def _apply_retention(root: Path, keep: int, *, current: str) -> list[str]:
    versions = list_snapshot_versions(root)
    doomed = [v for v in versions[:-keep] if v != current]
    for name in doomed:
        remove_path(root / name)
    now = time.time()
    for entry in root.iterdir():
        if entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX):
            try:
                if now - entry.lstat().st_mtime > STALE_TEMP_AGE_S:
                    remove_path(entry)
            except FileNotFoundError:
                pass
    return doomed


def _current_version(root: Path) -> str | None:
    try:
        return (root / SNAPSHOT_POINTER).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None


def _resolve_read_path(folder: str | os.PathLike[str]) -> Path:
    # Reads may come from anywhere (an analyst's copy); relative names use the output root.
    path = Path(folder).expanduser()
    return path if path.is_absolute() else output_root() / path


@dataclass(frozen=True)
class Snapshot:
    """One published version of a snapshot folder, pinned: every read sees the same run.

    Obtained from :func:`open_snapshot`. Reading a pinned version that the
    retention rule has meanwhile removed (after ``keep`` newer publishes)
    raises :class:`SnapshotError` with ``retryable=True``.

    Example:
        >>> snap = open_snapshot("star")  # doctest: +SKIP
        >>> fact, dates = snap.read("fact_sales"), snap.read("dim_date")  # doctest: +SKIP
    """

    folder: Path
    version: str
    manifest: dict[str, Any]

    def table_files(self, table: str, partitions: Collection[str]) -> list[tuple[str, Path]]:
        """The files of ``table`` under the given partition folders: (path in the table, file)."""
        entry = self.manifest["tables"].get(table)
        if entry is None:
            return []
        prefix = f"{table}/"
        files = [f.removeprefix(prefix) for f in entry["files"]]
        chosen = [f for f in files if f.rsplit("/", 1)[0] in partitions]
        return [(f, self.path / table / f) for f in chosen]

    @property
    def path(self) -> Path:
        """The version's folder."""
        return self.folder / self.version

    @property
    def tables(self) -> list[str]:
        """Table names in this version."""
        return list(self.manifest["tables"])

    def files(self, table: str) -> list[Path]:
        """The data files of ``table``, from the manifest."""
        return [self.path / f for f in self._entry(table)["files"]]

    def read_arrow(self, table: str, *, columns: Sequence[str] | None = None) -> pa.Table:
        """``table`` as an Arrow table (exact files of the manifest, row count checked)."""
        entry = self._entry(table)
        try:
            parts = [pq.ParquetFile(path).read(columns=columns) for path in self.files(table)]
        except FileNotFoundError as exc:
            raise SnapshotError(
                f"Snapshot version {self.version} of {self.folder} was removed while being read "
                f"(a newer version replaced it); open the snapshot again",
                retryable=True,
                target=str(self.folder),
                table=table,
            ) from exc
        result = (
            pa.concat_tables(parts)
            if parts
            else pa.schema([pa.field(c["name"], _parse_type(c["type"])) for c in entry["schema"]]).empty_table()
        )
        if result.num_rows != entry["n_rows"]:
            raise SnapshotError(
                f"Table {table!r} of snapshot {self.path} has {result.num_rows} rows but its "
                f"manifest says {entry['n_rows']}; the folder was modified outside dw_analytics",
                target=str(self.folder),
                table=table,
            )
        return result.replace_schema_metadata(None)

    def read(self, table: str, *, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """``table`` as a DataFrame; decimal columns come back as exact ``ArrowDtype(decimal128)``."""
        return self.read_arrow(table, columns=columns).to_pandas(types_mapper=_pandas_type)

    def _entry(self, table: str) -> dict[str, Any]:
        try:
            return self.manifest["tables"][table]
        except KeyError:
            raise SnapshotError(
                f"Snapshot {self.path} has no table {table!r}; it has {sorted(self.manifest['tables'])}",
                target=str(self.folder),
                table=table,
            ) from None


def _pandas_type(arrow_type: pa.DataType) -> Any:
    return pd.ArrowDtype(arrow_type) if pa.types.is_decimal(arrow_type) else None


def _parse_type(text: str) -> pa.DataType:
    match = re.fullmatch(r"decimal128\((\d+), (\d+)\)", text)
    if match:
        return pa.decimal128(int(match.group(1)), int(match.group(2)))
    special = {
        "timestamp[us]": pa.timestamp("us"),
        "date32[day]": pa.date32(),
        "time64[us]": pa.time64("us"),
    }
    return special.get(text) or pa.type_for_alias(text)


def open_snapshot(folder: str | os.PathLike[str], *, version: str | None = None) -> Snapshot:
    """Pin the current version of a snapshot folder (or a named ``version``).

    Args:
        folder: the snapshot folder (relative names resolve under ``DW_OUTPUT_DIR``).
        version: a specific version name; default the one ``CURRENT`` names.

    Raises:
        SnapshotError: nothing published yet, or the version is gone (retryable).

    Example:
        >>> open_snapshot("star").tables  # doctest: +SKIP
        ['fact_sales', 'dim_date']
    """
    root = _resolve_read_path(folder)
    if version is None:
        version = _current_version(root)
        if version is None:
            raise SnapshotError(
                f"No snapshot has been published in {root} yet (no {SNAPSHOT_POINTER} file)",
                target=str(root),
            )
    try:
        manifest = json.loads((root / version / SNAPSHOT_MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SnapshotError(
            f"Snapshot version {version} is not in {root} (removed, or never published)",
            retryable=True,
            target=str(root),
        ) from None
    return Snapshot(folder=root, version=version, manifest=manifest)


def read_snapshot(
    folder: str | os.PathLike[str],
    table: str,
    *,
    columns: Sequence[str] | None = None,
    attempts: int = 3,
) -> pd.DataFrame:
    """Read one table of the current snapshot, following the ``CURRENT`` pointer.

    The files read are exactly those of the version's manifest (never a folder
    listing), and the row count is checked, so the result is one complete run.
    If retention removes the version mid-read, the pointer is followed again
    (up to ``attempts`` times). To read several tables of the same run, use
    :func:`open_snapshot` and ``Snapshot.read``.

    Example:
        >>> read_snapshot("star", "dim_date").columns.tolist()  # doctest: +SKIP
        ['date_key', 'date', 'year', 'month']
    """
    for attempt in range(1, attempts + 1):
        try:
            return open_snapshot(folder).read(table, columns=columns)
        except SnapshotError as exc:
            if not exc.retryable or attempt == attempts:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
