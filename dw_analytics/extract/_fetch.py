"""How rows leave the database: the fastest correct route per backend.

All routes return the same typed frames (see :mod:`dw_analytics.extract._types`):

- PostgreSQL, whole result of at least :data:`ADBC_MIN_ROWS` rows (the
  planner's estimate), Django connection idle in autocommit (no atomic
  block, no transaction open, so nothing of ours is pending): ADBC
  (``adbc-driver-postgresql``) straight into Arrow columns. ADBC opens its
  own connection, which sees committed data only; that is exactly what the
  Django connection sees in that state. SQLite never uses ADBC: its driver
  embeds a second copy of SQLite, and two copies in one process lose each
  other's POSIX locks (SQLite's "How To Corrupt" guide, 2.2.1): other
  processes then miss our commits and the file can be corrupted.
- PostgreSQL, other whole results: ``COPY (query) TO STDOUT
  (FORMAT csv)`` on the Django connection (so it sees the caller's uncommitted
  writes), parsed by Arrow's multi-threaded CSV reader.
- Otherwise (SQLite, chunked reads, columns only the ORM
  can convert): the DB-API cursor of the Django connection, ``fetchmany``
  batches transposed in C and typed per column. On SQLite the query is wrapped
  so every column has one storage class and no declared type (no per-value
  Python converters); on PostgreSQL the cursor loads numeric and timestamps as
  text for Arrow to parse, and chunked reads use a named server-side cursor.

Measured on 1,000,000 Pedido rows (benchmarks/extract_queryset.py): ADBC
about 4x (PostgreSQL) a raw ``fetchall()`` → DataFrame. COPY is as fast or
faster at every size, but holds the CSV text beside the frame (peak 525 MB
instead of 425 MB for those rows); ADBC's own connection costs about 35 ms,
which is most of a small read (1,000 rows: 37 ms by ADBC, 2 ms by COPY).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
from django.db import DatabaseError

from dw_analytics.extract import _types as t

logger = logging.getLogger(__name__)

# Rows per fetchmany() when reading a whole result through a cursor: the Python
# tuples of one batch are typed into compact columns before the next batch.
FETCH_BATCH_ROWS = 100_000

#: Whole PostgreSQL results estimated at this many rows or more are read by ADBC (less
#: memory than COPY's text, see the module docstring); smaller ones by COPY (no new connection).
ADBC_MIN_ROWS = 500_000

# Kinds every route types identically from text or native values.
_ROUTABLE_KINDS = {t.INT, t.FLOAT, t.BOOL, t.DECIMAL, t.DATETIME, t.DATE, t.STRING}
# What a column becomes inside the SQLite wrapper: one storage class per column,
# and no declared type (so neither ADBC's per-column inference nor Python's
# sqlite3 converters see a mix of INTEGER and REAL, or parse dates one by one).
_SQLITE_CAST = {
    t.INT: "INTEGER",
    t.BOOL: "INTEGER",
    t.FLOAT: "REAL",
    t.DECIMAL: "REAL",  # SQLite keeps decimals as REAL (15 significant digits)
    t.DATETIME: "TEXT",
    t.DATE: "TEXT",
    t.STRING: "TEXT",
}
_PLAIN_PARAM_TYPES = (int, float, str, bytes, type(None))


def routable(specs: Sequence[t.ColumnSpec]) -> bool:
    """True when every column can be typed from text or native values alone."""
    return all(spec.kind in _ROUTABLE_KINDS and not spec.needs_orm_values for spec in specs)


# -- whole results ---------------------------------------------------------------------------


def read_frame(
    connection: Any, sql: str, params: Sequence[Any], specs: list[t.ColumnSpec], *, fast_ok: bool
) -> pd.DataFrame:
    """The whole result of ``sql`` as one typed DataFrame.

    ``fast_ok`` is False when the SQL cannot be wrapped or copied: it selects
    more columns than ``specs`` (ordering columns of a DISTINCT), or locks rows.
    """
    if fast_ok and routable(specs):
        if connection.vendor == "postgresql":
            if _autocommit_idle(connection) and _estimated_rows(connection, sql, params) >= ADBC_MIN_ROWS:
                frame = _adbc_postgres_frame(connection, sql, params, specs)
                if frame is not None:
                    return frame
            return _postgres_copy_frame(connection, sql, params, specs)
        if connection.vendor == "sqlite":
            sql = sqlite_typed_sql(sql, specs)
    with connection.cursor() as cursor:
        _text_loaders(connection, cursor, specs)
        cursor.execute(sql, params)
        frames = [t.rows_to_frame(specs, rows) for rows in batches(cursor, FETCH_BATCH_ROWS)]
    return concat_frames(specs, frames)


def iter_frames(
    connection: Any,
    sql: str,
    params: Sequence[Any],
    specs: list[t.ColumnSpec],
    chunksize: int,
    *,
    fast_ok: bool = True,
) -> Iterator[pd.DataFrame]:
    """Stream ``sql`` in typed frames of ``chunksize`` rows (one empty frame if no rows)."""
    if fast_ok and connection.vendor == "sqlite" and routable(specs):
        sql = sqlite_typed_sql(sql, specs)
    # chunked_cursor(): a named server-side cursor on PostgreSQL (unless
    # DISABLE_SERVER_SIDE_CURSORS), a plain lazily-stepped cursor elsewhere.
    cursor = connection.chunked_cursor()
    try:
        _text_loaders(connection, cursor, specs)
        with _planned_for_every_row(connection):
            cursor.execute(sql, params)
        yielded = False
        for rows in batches(cursor, chunksize):
            yielded = True
            yield t.rows_to_frame(specs, rows)
        if not yielded:
            yield t.frame_from_columns(specs, [])
    finally:
        cursor.close()


@contextlib.contextmanager
def _planned_for_every_row(connection: Any) -> Iterator[None]:
    """Have PostgreSQL plan a server-side cursor for reading all its rows.

    A cursor is planned for its first 10% of rows by default
    (``cursor_tuple_fraction``); a chunked read takes every row, and the
    fast-start plan can be far slower: for one month of the fact ``ORDER BY
    order_id``, a walk of the whole key index instead of the month's rows and a
    sort. The plan is made when the cursor is declared; the setting is restored
    right after.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('cursor_tuple_fraction'), set_config('cursor_tuple_fraction', '1', false)"
        )
        previous = cursor.fetchone()[0]
    try:
        yield
    finally:
        # After a failed declare inside a transaction nothing runs until the rollback,
        # which restores the setting itself.
        with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('cursor_tuple_fraction', %s, false)", [previous])


def batches(cursor: Any, size: int) -> Iterator[list[Any]]:
    """``fetchmany(size)`` until the cursor is exhausted."""
    while True:
        rows = cursor.fetchmany(size)
        if not rows:
            return
        yield rows


def concat_frames(specs: Sequence[t.ColumnSpec], frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate typed frames, keeping dtypes (also categories widened by one frame)."""
    if not frames:
        return t.frame_from_columns(specs, [])
    if len(frames) == 1:
        return frames[0]
    result = pd.concat(frames, ignore_index=True)
    for name, dtype in frames[0].dtypes.items():
        if isinstance(dtype, pd.CategoricalDtype) and result[name].dtype != dtype:
            # A value outside the declared choices widened one frame's categories.
            union = pd.api.types.union_categoricals([frame[name].array for frame in frames], ignore_order=True)
            result[name] = pd.Series(union, name=name)
    return result


# -- PostgreSQL ------------------------------------------------------------------------------


def _text_loaders(connection: Any, cursor: Any, specs: Sequence[t.ColumnSpec]) -> None:
    """Have psycopg hand numeric and timestamps over as text, for Arrow to parse.

    Django's own timestamp loader runs Python code per value (about 4x the cost
    of the whole fetch); Arrow parses the same text a column at a time, exactly.
    """
    if connection.vendor != "postgresql" or not routable(specs):
        return
    raw = getattr(cursor, "cursor", cursor)
    adapters = getattr(raw, "adapters", None)
    if adapters is None:  # pragma: no cover - psycopg2
        return
    from psycopg.types.string import TextLoader

    for type_name in ("numeric", "timestamptz", "timestamp", "date"):
        adapters.register_loader(type_name, TextLoader)


def _postgres_copy_frame(connection: Any, sql: str, params: Sequence[Any], specs: list[t.ColumnSpec]) -> pd.DataFrame:
    import psycopg

    with connection.cursor() as cursor:
        raw = cursor.cursor
        # COPY takes no bind parameters: merge them client-side, quoted by psycopg.
        with psycopg.ClientCursor(raw.connection) as quoting:
            statement = quoting.mogrify(sql, params or None)
        sink = io.BytesIO()
        with raw.copy(f"COPY ({statement}) TO STDOUT (FORMAT csv)") as copy:
            for block in copy:
                sink.write(block)
    if not sink.tell():
        return t.frame_from_columns(specs, [])
    names = [f"c{i}" for i in range(len(specs))]
    data = pa.py_buffer(sink.getbuffer())
    try:
        # timestamptz text carries its offset ("+00"): parsed straight to UTC instants.
        table = _parse_copy_csv(data, names, specs, timestamps=pa.timestamp("us", tz="UTC"))
    except pa.ArrowInvalid:
        # A timestamp without time zone (naive text): parse it as text instead.
        table = _parse_copy_csv(data, names, specs, timestamps=pa.string())
    columns = {spec.name: spec.convert_arrow(table.column(i)) for i, spec in enumerate(specs)}
    return pd.DataFrame(columns, copy=False)


def _parse_copy_csv(
    data: pa.Buffer, names: list[str], specs: list[t.ColumnSpec], *, timestamps: pa.DataType
) -> pa.Table:
    import pyarrow.csv as pa_csv

    csv_types = {
        t.INT: pa.int64(),
        t.FLOAT: pa.float64(),
        t.BOOL: pa.bool_(),
        t.DATE: pa.date32(),
        t.DATETIME: timestamps,
    }
    return pa_csv.read_csv(
        pa.BufferReader(data),
        read_options=pa_csv.ReadOptions(column_names=names, block_size=8 << 20),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types={name: _csv_type(spec, csv_types) for name, spec in zip(names, specs, strict=True)},
            true_values=["t"],
            false_values=["f"],
            null_values=[""],  # COPY csv writes NULL unquoted and '' as ""
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )


def _csv_type(spec: t.ColumnSpec, csv_types: dict[str, pa.DataType]) -> pa.DataType:
    if spec.kind == t.DECIMAL and spec.scale is not None and (spec.precision or 99) <= 15:
        # Up to 15 significant digits a double parse + rounding at the scale is
        # exact (see _types.float_to_decimal_array) and far faster than decimal text.
        return pa.float64()
    return csv_types.get(spec.kind, pa.string())


def _estimated_rows(connection: Any, sql: str, params: Sequence[Any]) -> float:
    """The PostgreSQL planner's estimate of the rows ``sql`` returns (no row is read)."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return float(plan[0]["Plan"]["Plan Rows"])


def _autocommit_idle(connection: Any) -> bool:
    """True when nothing of ours can be pending: autocommit, no atomic block, no transaction.

    Only then may another connection (ADBC) read for us: it sees committed data only.
    """
    if connection.in_atomic_block or not connection.get_autocommit():
        return False
    raw = connection.connection
    if raw is None:
        return True
    if connection.vendor == "sqlite":
        return not raw.in_transaction
    from psycopg.pq import TransactionStatus

    return raw.info.transaction_status == TransactionStatus.IDLE


def _postgres_uri(connection: Any) -> str | None:
    from urllib.parse import quote

    settings = connection.settings_dict
    if set(settings.get("OPTIONS") or {}) - {"sslmode", "connect_timeout", "application_name"}:
        return None  # options (pools, services, client certificates...) only Django knows
    user = quote(settings.get("USER") or "", safe="")
    password = quote(settings.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings.get("HOST") or "localhost"
    if "/" in host:
        return None  # a Unix socket directory
    port = f":{settings['PORT']}" if settings.get("PORT") else ""
    query = "&".join(f"{key}={quote(str(value), safe='')}" for key, value in (settings.get("OPTIONS") or {}).items())
    name = quote(settings.get("NAME") or "", safe="")
    return f"postgresql://{credentials}{host}{port}/{name}" + (f"?{query}" if query else "")


def _adbc_postgres_frame(
    connection: Any, sql: str, params: Sequence[Any], specs: list[t.ColumnSpec]
) -> pd.DataFrame | None:
    """Read through ADBC (binary COPY in C++, straight to Arrow); None when not possible."""
    try:
        import adbc_driver_postgresql.dbapi as adbc_postgres
        import psycopg
    except ImportError:  # pragma: no cover - optional fast path
        return None
    uri = _postgres_uri(connection)
    if uri is None:
        return None
    with connection.cursor() as cursor, psycopg.ClientCursor(cursor.cursor.connection) as quoting:
        # ADBC takes $1-style parameters: merge Django's client-side, quoted by psycopg.
        statement = quoting.mogrify(sql, params or None)
    try:
        adbc = adbc_postgres.connect(uri)
        with contextlib.closing(adbc), contextlib.closing(adbc.cursor()) as cursor:
            cursor.execute(statement)
            table = cursor.fetch_arrow_table()
    except Exception as exc:  # noqa: BLE001 - any ADBC failure: the COPY route still works
        logger.debug("ADBC read failed (%s); falling back to COPY", exc)
        return None
    if table.num_rows == 0:
        return t.frame_from_columns(specs, [])
    columns = {spec.name: spec.convert_arrow(table.column(i)) for i, spec in enumerate(specs)}
    return pd.DataFrame(columns, copy=False)


# -- SQLite ----------------------------------------------------------------------------------


def sqlite_typed_sql(sql: str, specs: Sequence[t.ColumnSpec]) -> str:
    """Wrap a query so each column has one SQLite storage class and no declared type.

    ``WITH q(c0, c1, ...) AS (<query>) SELECT CAST(c0 AS INTEGER), ... FROM q``:
    the CTE is flattened into the query by SQLite, keeping its ORDER BY.
    """
    names = [f"c{i}" for i in range(len(specs))]
    columns = ", ".join(f'CAST("{name}" AS {_SQLITE_CAST[spec.kind]})' for name, spec in zip(names, specs, strict=True))
    header = ", ".join(f'"{name}"' for name in names)
    return f'WITH "_dw_q"({header}) AS ({sql}) SELECT {columns} FROM "_dw_q"'
