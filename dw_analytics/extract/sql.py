"""Read a SQL query (any database SQLAlchemy 2 supports) into pandas.

A whole read takes rows straight from the DB-API cursor under the SQLAlchemy
result (no per-row ``Row`` processing); a chunked read streams through the
result (``stream_results`` / ``yield_per``). Rows are typed a column at a time with the same
rules as :func:`dw_analytics.extract.queryset.read_queryset`. Column types come,
in order of preference, from:

1. the SQLAlchemy types of the statement's columns (a ``select()`` over
   tables, or ``text(...).columns(total=Numeric(14, 2))``);
2. what the driver reports in ``cursor.description`` (PostgreSQL: the type,
   and precision / scale of ``numeric(p, s)``);
3. the values of the first rows (SQLite reports no types for a text query:
   integers → ``Int64``, REAL → ``float64``, text → ``str``; declare the
   columns to get exact decimals or timestamps).

With no model to say a column is NOT NULL, integers and booleans are always
read as the nullable ``Int64`` / ``boolean`` (unless a table column says
``nullable=False``).
"""

from __future__ import annotations

import decimal
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import types as sa_types

from dw_analytics.extract import _fetch
from dw_analytics.extract import _types as t
from dw_analytics.extract.exceptions import ExtractError

__all__ = ["read_sql"]

_PG_KINDS = {
    "int2": t.INT,
    "int4": t.INT,
    "int8": t.INT,
    "oid": t.INT,
    "float4": t.FLOAT,
    "float8": t.FLOAT,
    "numeric": t.DECIMAL,
    "bool": t.BOOL,
    "timestamptz": t.DATETIME,
    "timestamp": t.DATETIME,
    "date": t.DATE,
    "time": t.TIME,
    "text": t.STRING,
    "varchar": t.STRING,
    "bpchar": t.STRING,
    "name": t.STRING,
}


def read_sql(
    url_or_engine: str | sa.Engine,
    query: str | sa.sql.Executable,
    chunksize: int | None = None,
    params: Mapping[str, Any] | None = None,
) -> pd.DataFrame | Iterator[pd.DataFrame]:
    """Read the result of a SQL query into a DataFrame, or an iterator of DataFrames.

    Types follow the database where it reports them: ``numeric(p, s)`` →
    exact ``ArrowDtype(decimal128(p, s))``, timestamps → tz-aware
    ``datetime64[us, settings.TIME_ZONE]`` (naive database timestamps are taken
    as UTC, as Django stores them), integers → ``Int64`` (NULLs kept), booleans
    → ``boolean``, dates → ``ArrowDtype(date32)``, text → ``str``, an
    SQLAlchemy ``Enum`` → ``category``.

    With ``chunksize``, rows are streamed (``stream_results``: a server-side
    cursor on PostgreSQL), so memory is bounded by the chunk; every chunk has
    the same columns and dtypes, and an empty result yields one empty frame.

    Args:
        url_or_engine: an SQLAlchemy URL (``"sqlite:////tmp/x.db"``,
            ``"postgresql+psycopg://user@host/db"``) or an ``Engine``. An engine
            created here from a URL is disposed of when the read ends.
        query: SQL text (bind parameters as ``:name``) or an SQLAlchemy
            selectable (``select(...)``, ``text(...).columns(...)``).
        chunksize: rows per DataFrame; ``None`` reads everything into one frame.
        params: values for the query's bind parameters.

    Returns:
        A DataFrame, or an iterator of DataFrames when ``chunksize`` is set.

    Raises:
        ExtractError: bad URL, failing query (the message names the database
            and the start of the query), or a value that cannot take its type.

    Example:
        >>> df = read_sql(
        ...     "postgresql+psycopg://postgres@127.0.0.1/shop",
        ...     "SELECT id, total FROM sales_pedido WHERE total > :minimum",
        ...     params={"minimum": 100},
        ... )
        >>> df.dtypes["total"]
        decimal128(14, 2)[pyarrow]
    """
    if chunksize is not None and chunksize < 1:
        raise ExtractError(f"chunksize must be a positive number of rows, got {chunksize!r}")
    engine, owned = _engine(url_or_engine)
    statement = sa.text(query) if isinstance(query, str) else query
    reader = _SqlReader(engine, owned, statement, dict(params or {}))
    if chunksize is None:
        try:
            return reader.read_all()
        finally:
            reader.dispose()
    return reader.iter_chunks(chunksize)


def _engine(url_or_engine: str | sa.Engine) -> tuple[sa.Engine, bool]:
    if isinstance(url_or_engine, sa.Engine):
        return url_or_engine, False
    try:
        url = sa.engine.make_url(str(url_or_engine))
        if url.drivername in ("postgres", "postgresql"):
            url = url.set(drivername="postgresql+psycopg")  # psycopg 3, not psycopg2
        return sa.create_engine(url), True
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise ExtractError(
            f"Cannot use the database URL {url_or_engine!r}: {exc}. Expected e.g. "
            "'sqlite:////path/to/file.db' or 'postgresql+psycopg://user@host:5432/db'."
        ) from exc


class _SqlReader:
    def __init__(self, engine: sa.Engine, owned: bool, statement: Any, params: dict[str, Any]) -> None:
        self.engine = engine
        self.owned = owned
        self.statement = statement
        self.params = params

    def dispose(self) -> None:
        if self.owned:
            self.engine.dispose()

    def _error(self, exc: Exception) -> ExtractError:
        text = " ".join(str(self.statement).split())
        text = text if len(text) <= 120 else text[:117] + "..."
        where = self.engine.url.render_as_string(hide_password=True)
        return ExtractError(
            f"Query failed on {where}: {exc.__class__.__name__}: {exc}. Query: {text}",
            retryable=isinstance(exc, sa.exc.OperationalError),
        )

    def read_all(self) -> pd.DataFrame:
        try:
            with self.engine.connect() as connection:
                result = connection.execute(self.statement, self.params)
                return self._read(result, _fetch.FETCH_BATCH_ROWS, whole=True)
        except sa.exc.SQLAlchemyError as exc:
            raise self._error(exc) from exc

    def iter_chunks(self, chunksize: int) -> Iterator[pd.DataFrame]:
        try:
            with self.engine.connect() as connection:
                streaming = connection.execution_options(stream_results=True, yield_per=chunksize)
                result = streaming.execute(self.statement, self.params)
                yield from self._read(result, chunksize, whole=False)
        except sa.exc.SQLAlchemyError as exc:
            raise self._error(exc) from exc
        finally:
            self.dispose()

    def _read(self, result: sa.CursorResult, size: int, *, whole: bool) -> Any:
        if not result.returns_rows:
            raise ExtractError("The statement returns no rows; read_sql reads SELECT-like queries only.")
        names = list(result.keys())
        # Read what the driver reports before fetching: an exhausted result closes its cursor.
        description = list(result.cursor.description or [])
        adapters = getattr(result.cursor, "adapters", None)
        # Nothing is pre-fetched without stream_results, so a whole read takes raw
        # tuples from the DB-API cursor (no Row objects, no per-value processors);
        # a streaming result pre-fetches rows into its own buffer: go through it.
        batches = _fetch.batches(result.cursor, size) if whole else iter(result.partitions(size))
        first = next(batches, [])
        specs = self._specs(names, description, adapters, first)
        frames = (t.rows_to_frame(specs, rows) for rows in _chain(first, batches))
        if whole:
            return _fetch.concat_frames(specs, list(frames))
        return self._chunks(specs, first, frames)

    @staticmethod
    def _chunks(specs: list[t.ColumnSpec], first: list, frames: Iterator) -> Iterator:
        if not first:
            yield t.frame_from_columns(specs, [])
            return
        yield from frames

    def _specs(self, names: list[str], description: list[Any], adapters: Any, rows: list) -> list[t.ColumnSpec]:
        tz = _time_zone()
        declared = _declared_columns(self.statement)
        specs = []
        for i, name in enumerate(names):
            column = declared.get(name)
            spec = _spec_from_sqlalchemy(name, column, tz) if column is not None else None
            if spec is None and i < len(description):
                spec = _spec_from_description(name, description[i], adapters, tz)
            if spec is None:
                spec = _spec_from_values(name, [row[i] for row in rows[:1000]], tz)
            specs.append(spec)
        return specs


def _chain(first: list, rest: Iterator[list]) -> Iterator[list]:
    if first:
        yield first
    yield from rest


def _time_zone() -> str:
    try:
        from django.conf import settings

        return settings.TIME_ZONE or "UTC"
    except Exception:  # noqa: BLE001 - Django not configured: read_sql works without it
        return "UTC"


def _declared_columns(statement: Any) -> dict[str, Any]:
    columns = getattr(statement, "selected_columns", None)
    if columns is None:
        return {}
    return {column.key: column for column in columns}


def _spec_from_sqlalchemy(name: str, column: Any, tz: str) -> t.ColumnSpec | None:
    sa_type = column.type
    nullable = getattr(column, "nullable", True) is not False
    if isinstance(sa_type, sa_types.NullType):
        return None
    if isinstance(sa_type, sa_types.Boolean):
        return t.ColumnSpec(name, t.BOOL, nullable, tz=tz)
    if isinstance(sa_type, sa_types.Integer):
        return t.ColumnSpec(name, t.INT, nullable, tz=tz)
    if isinstance(sa_type, sa_types.Float) or (isinstance(sa_type, sa_types.Numeric) and not sa_type.asdecimal):
        return t.ColumnSpec(name, t.FLOAT, tz=tz)
    if isinstance(sa_type, sa_types.Numeric):
        return t.ColumnSpec(name, t.DECIMAL, precision=sa_type.precision, scale=sa_type.scale, tz=tz)
    if isinstance(sa_type, sa_types.DateTime):
        return t.ColumnSpec(name, t.DATETIME, tz=tz)
    if isinstance(sa_type, sa_types.Date):
        return t.ColumnSpec(name, t.DATE, tz=tz)
    if isinstance(sa_type, sa_types.Time):
        return t.ColumnSpec(name, t.TIME, tz=tz)
    if isinstance(sa_type, sa_types.Enum) and sa_type.enums:
        return t.ColumnSpec(name, t.STRING, tz=tz, categories=list(sa_type.enums))
    if isinstance(sa_type, sa_types.String):
        return t.ColumnSpec(name, t.STRING, tz=tz)
    return None


def _spec_from_description(name: str, entry: Sequence[Any], adapters: Any, tz: str) -> t.ColumnSpec | None:
    type_code = entry[1] if len(entry) > 1 else None
    if not isinstance(type_code, int):
        return None  # SQLite reports no types
    info = adapters.types.get(type_code) if adapters is not None else None
    kind = _PG_KINDS.get(getattr(info, "name", ""))
    if kind is None:
        return None
    if kind == t.DECIMAL:
        precision = getattr(entry, "precision", None)
        scale = getattr(entry, "scale", None)
        return t.ColumnSpec(name, kind, precision=precision, scale=scale, tz=tz)
    return t.ColumnSpec(name, kind, tz=tz)


def _spec_from_values(name: str, values: Sequence[Any], tz: str) -> t.ColumnSpec:
    import datetime as dt

    sample = next((v for v in values if v is not None), None)
    kind = t.OBJECT
    if isinstance(sample, bool):
        kind = t.BOOL
    elif isinstance(sample, int):
        kind = t.INT
    elif isinstance(sample, float):
        kind = t.FLOAT
    elif isinstance(sample, decimal.Decimal):
        kind = t.DECIMAL
    elif isinstance(sample, str):
        kind = t.STRING
    elif isinstance(sample, dt.datetime):
        kind = t.DATETIME
    elif isinstance(sample, dt.date):
        kind = t.DATE
    elif isinstance(sample, dt.time):
        kind = t.TIME
    if kind == t.INT and any(isinstance(v, float) for v in values):
        kind = t.FLOAT  # SQLite hands whole REALs of a column back as int sometimes
    return t.ColumnSpec(name, kind, tz=tz)
