"""SQLite writer: ``executemany`` on Django's own ``sqlite3`` connection.

Columns are converted vectorially (pyarrow / numpy) to what Django's SQLite
backend stores, batch by batch, then bound as plain Python values:

* decimals: ``DecimalField`` columns have NUMERIC affinity, so SQLite keeps
  the REAL (or INTEGER) nearest to the value whatever Django binds (it binds
  ``str(Decimal)``). For fields of up to 15 digits we bind
  ``unscaled / 10**places`` computed in float64 (correctly rounded, so the
  same double SQLite parses from the text, and cheaper to bind); wider fields
  are bound as decimal strings like Django does.
* datetimes: naive ``YYYY-MM-DD HH:MM:SS[.ffffff]`` in the connection's time
  zone (UTC with ``USE_TZ``), microseconds omitted when zero, exactly
  ``str(datetime)`` as Django writes it (string comparisons in filters rely
  on that form).
* dates ``YYYY-MM-DD``; booleans 0/1; integers, floats and text as is.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from itertools import chain, islice
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dw_analytics.load import models as _models
from dw_analytics.load._columns import ColumnPlan, LoadPlan

NAME = "sqlite-executemany"
DEFAULT_BATCH_SIZE = 50_000
#: rebuild non-unique indexes after the insert when the load has at least this
#: many rows and at least this fraction of the rows already in the table
REBUILD_MIN_ROWS = 50_000
#: rows per multi-row INSERT statement (bounded by the backend's parameter limit)
ROWS_PER_STATEMENT = 100
REBUILD_MIN_FRACTION = 0.5
#: decimals up to this many digits are bound as float64 (exact round trip)
_MAX_FLOAT_DIGITS = 15


def _python_values(plan: ColumnPlan, values: pa.Array, connection: Any) -> list:
    """One column slice as a list of values ready for sqlite3."""
    kind = plan.kind
    has_nulls = values.null_count > 0
    if kind == "decimal":
        digits = values.type.precision
        if digits <= _MAX_FLOAT_DIGITS:
            places = values.type.scale
            # Low 64 bits of each 128-bit unscaled integer: exact below 10**18.
            low = np.frombuffer(values.buffers()[1], dtype=np.int64)[values.offset * 2 :: 2][: len(values)]
            floats = low / 10.0**places
            if not has_nulls:
                return floats.tolist()
            out = floats.astype(object)
            out[np.asarray(values.is_null())] = None
            return out.tolist()
        return pc.cast(values, pa.string()).to_pylist()
    if kind == "datetime":
        zone = getattr(connection, "timezone", None)
        if values.type.tz is not None and zone is not None:
            values = pc.local_timestamp(values.cast(pa.timestamp("us", tz=str(zone))))
        else:
            values = values.cast(pa.timestamp("us"))
        # str(datetime) drops ".000000"; cast gives it always, so trim those.
        text = values.cast(pa.string())
        micros = np.asarray(values.cast(pa.int64()).fill_null(0)) % 1_000_000
        text = pc.if_else(pa.array(micros == 0), pc.utf8_slice_codeunits(text, 0, 19), text)
        return text.to_pylist()
    if kind == "date":
        return pc.cast(values, pa.string()).to_pylist()
    if kind in ("int", "float", "bool"):
        if has_nulls:
            return values.to_pylist()
        return values.to_numpy(zero_copy_only=False).tolist()
    return values.to_pylist()


def _flat_values(plan: LoadPlan, offset: int, length: int, connection: Any) -> Iterator[Any]:
    """The batch's values row after row, as one flat iterator."""
    columns = [_python_values(c, c.values.slice(offset, length), connection) for c in plan.columns]
    return chain.from_iterable(zip(*columns, strict=True))


def _insert_batch(cursor: Any, statement: Any, flat: Iterator[Any], length: int) -> int:
    """Insert ``length`` rows from ``flat``; return the number of rows changed.

    Rows go ``rows_per_statement`` at a time in one multi-row ``VALUES``
    statement: sqlite3's ``executemany`` costs a statement reset and step
    per parameter set, so grouping rows cuts the insert time by ~2.5x
    (measured: 500,000 rows 1.13 s one per statement, 0.42 s fifty per
    statement). The grouping is done by C iterators (``zip`` over one
    flat iterator), not by a Python loop.
    """
    per = statement.rows_per_statement
    full, rest = divmod(length, per)
    changed = 0
    if full:
        groups = zip(*[flat] * (per * statement.n_columns), strict=False)
        cursor.executemany(statement.sql(per), islice(groups, full))
        changed += cursor.rowcount
    if rest:
        cursor.execute(statement.sql(rest), tuple(flat))
        changed += cursor.rowcount
    return changed


class _InsertStatement:
    """``INSERT ... VALUES (...), (...) [ON CONFLICT ...]`` for a given number of rows."""

    def __init__(self, head: str, tail: str, n_columns: int, max_params: int) -> None:
        self.head, self.tail, self.n_columns = head, tail, n_columns
        self.rows_per_statement = max(1, min(ROWS_PER_STATEMENT, max_params // n_columns))
        self._one = "(" + ", ".join("?" * n_columns) + ")"

    def sql(self, n_rows: int) -> str:
        return f"{self.head} VALUES {', '.join([self._one] * n_rows)}{self.tail}"


def write(plan: LoadPlan, mode: str, connection: Any, batch_size: int | None) -> _models.Counts:
    """Write ``plan`` in ``mode``; the caller holds the transaction."""
    quote = connection.ops.quote_name
    table = quote(plan.table)
    counts = _models.Counts()
    connection.ensure_connection()
    cursor = connection.connection.cursor()
    try:
        if mode == "replace":
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts.deleted = cursor.fetchone()[0]
            cursor.execute(f"DELETE FROM {table}")
        if plan.n_rows == 0:
            return counts
        rebuilt = _drop_indexes_for_bulk(cursor, plan, quote, table)
        names = ", ".join(quote(c.column) for c in plan.columns)
        tail = _on_conflict(plan, quote, table) if mode == "upsert" else ""
        max_params = connection.features.max_query_params or 999
        statement = _InsertStatement(f"INSERT INTO {table} ({names})", tail, len(plan.columns), max_params)
        if mode == "upsert":
            cursor.execute(f"SELECT count(*) FROM {table}")
            before = cursor.fetchone()[0]
        changed = 0
        done = 0
        for offset, length in _models.batches(plan.n_rows, batch_size or DEFAULT_BATCH_SIZE):
            flat = _flat_values(plan, offset, length, connection)
            changed += _insert_batch(cursor, statement, flat, length)
            done += length
            _models.on_batch_written(done)
        for create_sql in rebuilt:
            cursor.execute(create_sql)
        if mode == "upsert":
            cursor.execute(f"SELECT count(*) FROM {table}")
            # Nothing else writes inside our transaction: the growth is the
            # inserts, the remaining changes are the updates of changed rows.
            counts.inserted = cursor.fetchone()[0] - before
            counts.updated = changed - counts.inserted
        else:
            counts.inserted = plan.n_rows
    finally:
        cursor.close()
    return counts


def _drop_indexes_for_bulk(cursor: Any, plan: LoadPlan, quote: Any, table: str) -> list[str]:
    """Drop the table's non-unique indexes when rebuilding them is cheaper; return their SQL.

    Inserting many rows into B-tree indexes keyed by random values (foreign
    keys, timestamps) costs a page miss per row once they outgrow the cache;
    building an index afterwards sorts once. Measured on 1,000,000 Pedido rows:
    15 s with the indexes in place, 3 s dropping and recreating them. DDL is
    transactional in SQLite and WAL readers keep their snapshot, so readers
    still see the old table until commit and a failure restores the indexes.
    Unique indexes (constraints, upsert targets) are never dropped.
    """
    if plan.n_rows < REBUILD_MIN_ROWS:
        return []
    cursor.execute(f"SELECT count(*) FROM {table}")
    if plan.n_rows < cursor.fetchone()[0] * REBUILD_MIN_FRACTION:
        return []
    cursor.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
        "AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE%'",
        (plan.table,),
    )
    dropped: list[str] = []
    try:
        for name, create_sql in cursor.fetchall():
            cursor.execute(f"DROP INDEX {quote(name)}")
            dropped.append(create_sql)
    except sqlite3.OperationalError:
        # SQLite refuses DDL while another statement of this connection is
        # still reading (a streaming extract feeding this load): keep the
        # indexes and load with them in place.
        for create_sql in dropped:
            cursor.execute(create_sql)
        return []
    return dropped


def _on_conflict(plan: LoadPlan, quote: Any, table: str) -> str:
    keys = ", ".join(quote(c.column) for c in plan.key_columns)
    compare = [c for c in plan.columns if c.compare]
    update = [c for c in plan.columns if c.update]
    if not compare:
        return f" ON CONFLICT ({keys}) DO NOTHING"
    assignments = ", ".join(f"{quote(c.column)} = excluded.{quote(c.column)}" for c in update)
    changed = " OR ".join(f"{table}.{quote(c.column)} IS NOT excluded.{quote(c.column)}" for c in compare)
    return f" ON CONFLICT ({keys}) DO UPDATE SET {assignments} WHERE {changed}"
