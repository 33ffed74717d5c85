"""Database sync and migration: any SQLAlchemy source → a Django model, in chunks, incrementally.

The source is a table (reflected, so its declared types — ``DECIMAL(14,2)``, ``DATETIME`` —
give exact pandas dtypes) or a SQL query, read with :func:`read_sql` in chunks; each chunk
is renamed through the column mapping and written with :func:`write_model` (``upsert`` by
the key, ``append``, or ``replace`` of the whole table), all inside the ``sync`` pipeline's
one transaction: a failure leaves the target as it was.

Incremental: with ``incremental_column`` only rows whose value is at or past the stored
watermark are read — ``>=`` for upsert, so rows sharing the last value and committed after
the previous read are not lost (rows re-read unchanged are neither written nor counted);
``>`` for append, which would otherwise duplicate them. The watermark (the greatest value
read) advances in the same transaction as the load. A timestamp column's watermark is kept
in ``warehouse.Watermark``; any other column's (ids, version numbers, dates) in
``ops.SyncWatermark``. Naive source timestamps (MySQL ``DATETIME``, SQLite) are UTC, as
Django stores them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd
import sqlalchemy as sa

from dw_analytics.core.exceptions import ConfigurationError
from dw_analytics.core.pipeline import BasePipeline
from dw_analytics.core.registry import register
from dw_analytics.extract.exceptions import ExtractError
from dw_analytics.extract.sql import read_sql
from dw_analytics.jobs._common import field_for, get_model, parse_dict, parse_list
from dw_analytics.jobs.exceptions import SyncError
from dw_analytics.load.base import LoadResult
from dw_analytics.load.models import write_model

__all__ = ["MODES", "SyncResult", "sync_source"]

MODES = ("upsert", "append", "replace")
DEFAULT_CHUNKSIZE = 50_000


def _mode(value: str) -> str:
    if value not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {value!r}")
    return value


@register
class SyncPipeline(BasePipeline):
    """Copy a SQLAlchemy source into a model; see the module docstring.

    The source URL is given to the constructor, not as a parameter, so its password
    never reaches the run record (``parameters`` keeps the URL without it).

    Example:
        >>> SyncPipeline(source_url="mysql+pymysql://root@127.0.0.1/shop", table="clientes",  # doctest: +SKIP
        ...              model="sales.Cliente", keys=["email"]).run()
    """

    name = "sync"
    description = "Copy a table or query from any SQLAlchemy database into a model (incremental)"
    chunked = True
    parameters = {
        "source": str,
        "table": str,
        "query": str,
        "model": str,
        "keys": parse_list,
        "mode": _mode,
        "incremental_column": str,
        "mapping": parse_dict,
        "chunksize": int,
        "watermark_name": str,
    }

    def __init__(self, *, source_url: str | sa.Engine | None = None, **params: Any) -> None:
        source_url = source_url or params.get("source")  # run_pipeline sync --param source=URL
        if not source_url:
            raise ConfigurationError("sync needs the source database URL (--source)")
        engine = source_url if isinstance(source_url, sa.Engine) else _engine(str(source_url))
        params["source"] = engine.url.render_as_string(hide_password=True)
        super().__init__(**params)
        p = self.params
        if ("table" in p) == ("query" in p):
            raise ConfigurationError("sync needs exactly one of table or query")
        if "model" not in p:
            raise ConfigurationError("sync needs the target model (--to app.Model)")
        self.engine = engine
        self.model = get_model(p["model"])
        self.mode = p.setdefault("mode", "upsert")
        self.keys = list(p.get("keys") or [])
        if self.mode == "upsert" and not self.keys:
            raise ConfigurationError("upsert needs the key field(s) of the target (--key)")
        self.column = p.get("incremental_column")
        if self.column and self.mode == "replace":
            raise ConfigurationError("replace rewrites the whole table: it cannot be incremental")
        self.mapping = {str(k): str(v) for k, v in (p.get("mapping") or {}).items()}
        self.chunksize = p.get("chunksize", DEFAULT_CHUNKSIZE)
        self.watermark_name = p.get("watermark_name") or _watermark_name(
            self.model._meta.label, params["source"], p.get("table") or p.get("query"), self.column
        )
        self._newest: Any = None
        self._first_load = True
        self._checked = False

    # -- the three verbs -------------------------------------------------------------------
    def extract(self) -> Iterator[pd.DataFrame]:
        statement, params = self._statement(self._stored_watermark())
        return read_sql(self.engine, statement, chunksize=self.chunksize, params=params)

    def transform(self, chunk: pd.DataFrame) -> pd.DataFrame:
        if self.column:
            if self.column not in chunk.columns:
                raise SyncError(
                    f"the incremental column {self.column!r} is not in the source's columns "
                    f"({', '.join(map(str, chunk.columns))})",
                    column=self.column,
                )
            newest = chunk[self.column].max()
            if not pd.isna(newest) and (self._newest is None or newest > self._newest):
                self._newest = newest
        dropped = [src for src, dst in self.mapping.items() if not dst]
        renamed = chunk.drop(columns=dropped).rename(columns={s: d for s, d in self.mapping.items() if d})
        if not self._checked:
            unknown = [c for c in renamed.columns if field_for(self.model, str(c)) is None]
            if unknown:
                fields = ", ".join(f.attname for f in self.model._meta.concrete_fields)
                raise SyncError(
                    f"source column(s) {', '.join(map(repr, unknown))} match no field of "
                    f"{self.model._meta.label} ({fields}); map them with --map SRC=FIELD, drop "
                    "them with --map SRC=, or select fewer columns with --query",
                    column=str(unknown[0]),
                )
            self._checked = True
        return renamed

    def load(self, chunk: pd.DataFrame) -> LoadResult:
        mode = self.mode
        if mode == "replace" and not self._first_load:
            mode = "append"  # the first chunk emptied the table, inside the same transaction
        self._first_load = False
        return write_model(chunk, self.model, mode=mode, unique_fields=self.keys or None, using=self.using)

    def execute(self) -> dict[str, Any]:
        try:
            super().execute()
        finally:
            self.engine.dispose()
        if self.column and self._newest is not None:
            self._store_watermark(self._newest)
        return {
            "watermark_name": self.watermark_name if self.column else None,
            "watermark": None if self._newest is None else str(self._newest),
        }

    # -- source statement -----------------------------------------------------------------
    def _statement(self, watermark: Any) -> tuple[Any, dict[str, Any]]:
        op = ">=" if self.mode == "upsert" else ">"
        if "table" in self.params:
            table = self._reflect(self.params["table"])
            statement = sa.select(table)
            if self.column and watermark is not None:
                if self.column not in table.c:
                    raise SyncError(f"table {table.fullname!r} has no column {self.column!r}", column=self.column)
                column = table.c[self.column]
                value = _bind_value(watermark, self.engine, column.type)
                statement = statement.where(column >= value if op == ">=" else column > value)
            return statement, {}
        query = self.params["query"].strip().rstrip(";")
        if not self.column or watermark is None:
            return query, {}
        quoted = self.engine.dialect.identifier_preparer.quote(self.column)
        wrapped = f"SELECT * FROM ({query}) dw_src WHERE dw_src.{quoted} {op} :dw_watermark"
        return wrapped, {"dw_watermark": _bind_value(watermark, self.engine, None)}

    def _reflect(self, name: str) -> sa.Table:
        schema, _, table = name.rpartition(".")
        try:
            return sa.Table(table, sa.MetaData(), schema=schema or None, autoload_with=self.engine)
        except sa.exc.NoSuchTableError:
            raise SyncError(f"no table {name!r} in {self.params['source']}", table=name) from None
        except sa.exc.SQLAlchemyError as exc:
            raise ExtractError(
                f"cannot read the definition of {name!r} from {self.params['source']}: {exc}",
                retryable=isinstance(exc, sa.exc.OperationalError),
            ) from exc

    # -- watermarks ------------------------------------------------------------------------------
    def _stored_watermark(self) -> Any:
        if not self.column:
            return None
        from dw_analytics.ops.models import SyncWatermark
        from dw_analytics.warehouse.models import Watermark

        stamp = Watermark.objects.using(self.using).filter(name=self.watermark_name).first()
        if stamp is not None and stamp.last_updated_at is not None:
            return stamp.last_updated_at
        other = SyncWatermark.objects.using(self.using).filter(name=self.watermark_name).first()
        return None if other is None else _parse_value(other.kind, other.value)

    def _store_watermark(self, value: Any) -> None:
        from dw_analytics.ops.models import SyncWatermark
        from dw_analytics.warehouse.models import Watermark

        if isinstance(value, pd.Timestamp | dt.datetime):
            Watermark.objects.using(self.using).update_or_create(
                name=self.watermark_name,
                defaults={
                    "last_updated_at": pd.Timestamp(value).to_pydatetime(),
                    "last_id": None,
                    "run_id": self.log.run_id,
                },
            )
            return
        kind, text = _value_text(value)
        SyncWatermark.objects.using(self.using).update_or_create(
            name=self.watermark_name, defaults={"column": self.column, "kind": kind, "value": text}
        )


def _engine(url: str) -> sa.Engine:
    try:
        parsed = sa.engine.make_url(url)
        if parsed.drivername in ("postgres", "postgresql"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.drivername == "mysql":
            parsed = parsed.set(drivername="mysql+pymysql")
        return sa.create_engine(parsed)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise ConfigurationError(
            f"cannot use the source URL {url!r}: {exc}. Expected e.g. "
            "'mysql+pymysql://user@host:3306/db', 'postgresql://user@host/db' or 'sqlite:////path.db'",
            option="source",
        ) from exc


def _watermark_name(label: str, source: str, what: str | None, column: str | None) -> str:
    digest = hashlib.sha1(f"{source}|{what}|{column}".encode()).hexdigest()[:10]
    readable = (what or "query") if len(what or "") <= 60 else "query"
    return f"sync:{label}<-{readable}:{digest}"[:200]


def _bind_value(value: Any, engine: sa.Engine, column_type: Any) -> Any:
    """The watermark as the source compares it: aware UTC for zone-aware columns, else naive UTC."""
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        utc = value.astimezone(dt.UTC)
        aware = getattr(column_type, "timezone", None)
        if aware or (aware is None and engine.dialect.name == "postgresql"):
            return utc
        return utc.replace(tzinfo=None)
    if hasattr(value, "item"):
        return value.item()
    return value


def _value_text(value: Any) -> tuple[str, str]:
    if hasattr(value, "item") and not isinstance(value, Decimal):
        value = value.item()
    if isinstance(value, bool):
        raise SyncError("a boolean column cannot be an incremental column")
    if isinstance(value, int):
        return "int", str(value)
    if isinstance(value, Decimal | float):
        return "decimal", str(value)
    if isinstance(value, dt.date):
        return "date", value.isoformat()
    return "string", str(value)


def _parse_value(kind: str, text: str) -> Any:
    if kind == "int":
        return int(text)
    if kind == "decimal":
        return Decimal(text)
    if kind == "date":
        return dt.date.fromisoformat(text)
    return text


@dataclass
class SyncResult:
    """What a sync did: rows read and written, the watermark, the run that recorded it."""

    n_read: int
    n_inserted: int
    n_updated: int
    n_deleted: int
    watermark: str | None
    run_id: int | None
    duration_s: float


def sync_source(
    source_url: str | sa.Engine,
    *,
    to: str,
    key: Sequence[str] | str | None = None,
    table: str | None = None,
    query: str | None = None,
    mode: str = "upsert",
    incremental_column: str | None = None,
    mapping: Mapping[str, str] | None = None,
    chunksize: int = DEFAULT_CHUNKSIZE,
    watermark_name: str | None = None,
    triggered_by: str = "",
    using: str = "default",
) -> SyncResult:
    """Copy ``table`` (or the rows of ``query``) from ``source_url`` into model ``to``.

    Args:
        source_url: an SQLAlchemy URL (``mysql+pymysql://root@127.0.0.1:3306/shop``,
            ``postgresql://user@host/db``, ``sqlite:////path.db``) or an Engine.
        to: the target model label.
        key: the target field(s) identifying a row (required for ``upsert``).
        table: a source table (``schema.table`` allowed), reflected for exact types.
        query: a SELECT instead of ``table``.
        mode: ``upsert`` (default), ``append`` or ``replace``.
        incremental_column: read only rows at or past the stored watermark of this
            source column (timestamp, id, version...).
        mapping: source column → target field; an empty target drops the column.
        chunksize: rows per chunk (memory bound).
        watermark_name: override the watermark's name (default derived from the
            target, source and column).
        triggered_by: who asked (recorded with the run).
        using: target database alias.

    Returns:
        A :class:`SyncResult`.

    Raises:
        SyncError: unknown source columns, a missing table or incremental column.
        ConfigurationError: inconsistent options, a bad URL.
        ExtractError: the source failed (``retryable`` when the connection dropped).

    Example:
        >>> result = sync_source("mysql+pymysql://root@127.0.0.1:3306/loja", table="clientes",  # doctest: +SKIP
        ...                      to="sales.Cliente", key="email", incremental_column="alterado_em",
        ...                      mapping={"cidade_nome": "cidade", "legacy_id": ""})
        >>> result.n_inserted, result.n_updated  # doctest: +SKIP
        (120, 4)
    """
    keys = [key] if isinstance(key, str) else list(key or [])
    params: dict[str, Any] = {"model": to, "keys": keys, "mode": mode, "chunksize": chunksize}
    for name, value in (
        ("table", table),
        ("query", query),
        ("incremental_column", incremental_column),
        ("watermark_name", watermark_name),
    ):
        if value:
            params[name] = value
    if mapping:
        params["mapping"] = dict(mapping)
    pipeline = SyncPipeline(source_url=source_url, using=using, **params)
    log = pipeline.run(triggered_by=triggered_by)
    return SyncResult(
        n_read=log.n_processed,
        n_inserted=log.n_inserted,
        n_updated=log.n_updated,
        n_deleted=log.n_deleted,
        watermark=log.result["watermark"],
        run_id=log.run_id,
        duration_s=log.duration_s,
    )
