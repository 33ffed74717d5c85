"""Large exports: a model, a warehouse table or a named query → Parquet, CSV or Excel.

Rows stream from the database in chunks (:func:`read_queryset` / :func:`read_sql` with
``chunksize``) straight into a streaming writer, so memory is bounded by the chunk whatever
the row count. Every output is published atomically (a hidden temporary sibling renamed
into place), and every export is a run of the registered ``export`` pipeline, recorded in
``PipelineRun`` with its timings and row count.

Formats:

* ``parquet``: :func:`dw_analytics.load.parquet.write_parquet` (Power BI types, exact decimals).
* ``xlsx``: :func:`dw_analytics.load.excel.write_excel` in streaming mode; more rows than a
  sheet holds continue on ``Sheet (2)``, ``Sheet (3)``...; formula-like text is escaped.
* ``csv``: written here (the load package has no CSV writer) with pyarrow's CSV writer:
  UTF-8 (``bom=True`` adds the BOM Excel wants), any one-character separator, decimals as
  their exact text (``decimal_comma=True`` writes ``12,30``), datetimes as ISO 8601 with
  their offset in ``settings.TIME_ZONE``, text starting with ``= + - @`` tab or CR
  prefixed with ``'`` (OWASP CSV injection) unless ``escape_formulas=False``.
"""

from __future__ import annotations

import hmac
import pickle
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
from django.conf import settings
from django.core.exceptions import FieldError, ValidationError
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac

from dw_analytics.core.exceptions import ConfigurationError
from dw_analytics.core.pipeline import BasePipeline
from dw_analytics.core.registry import register
from dw_analytics.extract.queryset import read_queryset
from dw_analytics.extract.sql import read_sql
from dw_analytics.jobs._common import get_model, parse_bool, parse_dict, parse_list, sqlalchemy_url
from dw_analytics.jobs.exceptions import JobError, UnknownSourceError
from dw_analytics.load.base import LoadResult
from dw_analytics.load.excel import write_excel
from dw_analytics.load.parquet import write_parquet
from dw_analytics.load.paths import atomic_output, resolve_output_path

__all__ = [
    "FORMATS",
    "ExportResult",
    "RegisteredQuery",
    "export_source",
    "register_query",
    "registered_queries",
    "resolve_source",
]

FORMATS = ("parquet", "csv", "xlsx")
DEFAULT_CHUNKSIZE = 100_000
#: a text cell starting with one of these is a formula for Excel / LibreOffice / Sheets
FORMULA_PATTERN = r"^[=+\-@\t\r]"
UTF8_BOM = b"\xef\xbb\xbf"


# -- sources ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisteredQuery:
    """A named export source: a QuerySet factory, or SQL run on the Django database.

    SQL takes its ``--filter`` values as bind parameters (``:uf``), so the SQL decides
    what a filter means; a QuerySet takes them as Django lookups.
    """

    name: str
    description: str
    queryset: Callable[[], models.QuerySet] | None = None
    sql: str | None = None


_QUERIES: dict[str, RegisteredQuery] = {}


def register_query(
    name: str,
    *,
    queryset: Callable[[], models.QuerySet] | None = None,
    sql: str | None = None,
    description: str = "",
) -> RegisteredQuery:
    """Make a QuerySet factory or a SQL query exportable by ``name``.

    Example:
        >>> register_query(  # doctest: +SKIP
        ...     "clientes_sp",
        ...     queryset=lambda: Cliente.objects.filter(uf="SP").values("id", "nome", "email"),
        ...     description="Customers in São Paulo",
        ... )
    """
    if (queryset is None) == (sql is None):
        raise ConfigurationError(f"query {name!r}: give exactly one of queryset= or sql=")
    entry = RegisteredQuery(name, description, queryset, sql)
    _QUERIES[name] = entry
    return entry


def registered_queries() -> dict[str, RegisteredQuery]:
    """The named export queries, by name."""
    return dict(sorted(_QUERIES.items()))


def _orders_detailed() -> models.QuerySet:
    from dw_analytics.sales.models import Pedido

    return Pedido.objects.values(
        "id",
        "criado_em",
        "cliente_id",
        "cliente__nome",
        "cliente__uf",
        "produto_id",
        "produto__nome",
        "produto__categoria__nome",
        "quantidade",
        "total",
        "custo",
    )


register_query(
    "pedidos_detalhados",
    queryset=_orders_detailed,
    description="Orders with customer, state, product and category names",
)
register_query(
    "vendas_por_dia",
    sql=(
        "SELECT d.date AS dia, f.category_key, COUNT(*) AS pedidos, SUM(f.quantidade) AS quantidade, "
        "SUM(f.total) AS receita, SUM(f.lucro) AS lucro "
        "FROM dw_fact_sales f JOIN dw_dim_date d ON d.date_key = f.date_key "
        "GROUP BY d.date, f.category_key ORDER BY d.date, f.category_key"
    ),
    description="Daily revenue and profit per category from the star schema",
)


def _warehouse_tables() -> dict[str, type[models.Model]]:
    from dw_analytics.pipelines.nightly import SNAPSHOT_TABLES

    return dict(SNAPSHOT_TABLES)


def resolve_source(source: str) -> RegisteredQuery:
    """What ``source`` names: a registered query, a warehouse table or a model label.

    A warehouse table is named as in the Power BI snapshot (``fact_sales``) or by its
    database table (``dw_fact_sales``); a model by its label (``sales.Pedido``).

    Raises:
        UnknownSourceError: none of these; the message lists the valid names.

    Example:
        >>> resolve_source("fact_sales").queryset().model.__name__  # doctest: +SKIP
        'FactSales'
    """
    if source in _QUERIES:
        return _QUERIES[source]
    tables = _warehouse_tables()
    by_db_table = {model._meta.db_table: model for model in tables.values()}
    model = tables.get(source) or by_db_table.get(source)
    if model is None and "." in source:
        try:
            model = get_model(source)
        except ConfigurationError as exc:
            raise UnknownSourceError(exc.message, source=source) from None
    if model is None:
        raise UnknownSourceError(
            f"unknown export source {source!r}; use a model label such as 'sales.Pedido', "
            f"a warehouse table ({', '.join(sorted(tables))}) or a registered query "
            f"({', '.join(sorted(_QUERIES))})",
            source=source,
        )
    return RegisteredQuery(model._meta.label, model.__doc__ or "", queryset=model.objects.all)


# -- the pipeline ---------------------------------------------------------------------------


def _format(value: str) -> str:
    if value not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {value!r}")
    return value


def _separator(value: str) -> str:
    if len(value) != 1 or value in '"\r\n':
        raise ValueError(f"sep must be one character other than a quote or newline; got {value!r}")
    return value


@register
class ExportPipeline(BasePipeline):
    """Stream a source into a Parquet, CSV or Excel file; see the module docstring.

    Example:
        >>> log = ExportPipeline(source="sales.Pedido", format="csv", path="pedidos.csv").run()  # doctest: +SKIP
        >>> log.n_processed  # doctest: +SKIP
        1000000
    """

    name = "export"
    description = "Export a model, warehouse table or registered query to Parquet, CSV or Excel"
    parameters = {
        "source": str,
        "format": _format,
        "path": str,
        "filters": parse_dict,
        "fields": parse_list,
        "chunksize": int,
        "sep": _separator,
        "bom": parse_bool,
        "decimal_comma": parse_bool,
        "escape_formulas": parse_bool,
        "sheet": str,
        "row_group_size": int,
        "queryset_from_admin": parse_bool,
    }

    def __init__(self, *, queryset: models.QuerySet | None = None, **params: Any) -> None:
        if queryset is not None:
            params["queryset_from_admin"] = True
        super().__init__(**params)
        for required in ("source", "format", "path"):
            if required not in self.params:
                raise ConfigurationError(f"export needs the parameter {required!r}")
        self.queryset = queryset
        self.entry = resolve_source(self.params["source"]) if queryset is None else None
        self.target = resolve_output_path(self.params["path"])
        self.chunksize = self.params.get("chunksize", DEFAULT_CHUNKSIZE)

    def extract(self) -> Iterator[pd.DataFrame]:
        filters = self.params.get("filters") or {}
        fields = self.params.get("fields") or None
        if self.entry is not None and self.entry.sql is not None:
            if fields:
                raise ConfigurationError(
                    f"query {self.entry.name!r} is SQL: choose its columns in the SQL, not with fields"
                )
            return read_sql(sqlalchemy_url(self.using), self.entry.sql, chunksize=self.chunksize, params=filters)
        qs = self.queryset if self.queryset is not None else self.entry.queryset()
        qs = qs.using(self.using)
        try:
            qs = qs.filter(**filters)
            if not qs.query.order_by and not qs.query.group_by:
                qs = qs.order_by("pk")  # a stable order: the same export twice gives the same file
        except (FieldError, ValidationError, ValueError, TypeError) as exc:
            raise ConfigurationError(f"invalid filter {filters} on {qs.model._meta.label}: {exc}") from exc
        return read_queryset(qs, fields=fields, chunksize=self.chunksize)

    def transform(self, chunks: Iterator[pd.DataFrame]) -> Iterator[Any]:
        if self.params["format"] != "csv":
            return chunks
        options = CsvOptions(
            sep=self.params.get("sep", ","),
            decimal_comma=self.params.get("decimal_comma", False),
            escape_formulas=self.params.get("escape_formulas", True),
        )
        return (csv_table(chunk, options) for chunk in chunks)

    def load(self, data: Iterator[Any]) -> LoadResult:
        fmt = self.params["format"]
        if fmt == "parquet":
            options = {"row_group_size": self.params["row_group_size"]} if "row_group_size" in self.params else {}
            return write_parquet(data, self.target, run_id=self.log.run_id, **options)
        if fmt == "xlsx":
            sheet = self.params.get("sheet") or _default_sheet(self.params["source"])
            return write_excel({sheet: data}, self.target, streaming=True)
        return write_csv_tables(
            data,
            self.target,
            sep=self.params.get("sep", ","),
            bom=self.params.get("bom", False),
        )


def _default_sheet(source: str) -> str:
    return source.rsplit(".", 1)[-1][:31] or "Dados"


# -- CSV ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvOptions:
    """How values are written as CSV text."""

    sep: str = ","
    decimal_comma: bool = False
    escape_formulas: bool = True


def csv_table(df: pd.DataFrame, options: CsvOptions) -> pa.Table:
    """Turn a chunk into an Arrow table of text columns, formatted for CSV (vectorized).

    Example:
        >>> csv_table(pd.DataFrame({"nome": ["=1+1"]}), CsvOptions()).column(0).to_pylist()
        ["'=1+1"]
    """
    zone = settings.TIME_ZONE or "UTC"
    columns = {str(name): _csv_text(df[name], options, zone) for name in df.columns}
    return pa.table(columns) if columns else pa.table({})


def _csv_text(series: pd.Series, options: CsvOptions, zone: str) -> pa.Array:
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object).astype("string")
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert(zone)
    array = pa.array(series, from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    kind = array.type
    if pa.types.is_timestamp(kind):
        text = pc.strftime(array, format="%Y-%m-%dT%H:%M:%S%z" if kind.tz else "%Y-%m-%dT%H:%M:%S")
    elif pa.types.is_boolean(kind):
        text = pc.if_else(array, "true", "false")
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = array.cast(pa.string())
        if options.escape_formulas:
            risky = pc.match_substring_regex(text, FORMULA_PATTERN)
            text = pc.if_else(risky, pc.binary_join_element_wise("'", text, ""), text)
        return text
    elif pa.types.is_null(kind):
        return pa.array([None] * len(array), pa.string())
    else:
        text = array.cast(pa.string())
    if options.decimal_comma and (pa.types.is_decimal(kind) or pa.types.is_floating(kind)):
        text = pc.replace_substring(text, ".", ",")
    return text


def write_csv_tables(tables: Iterable[pa.Table], path: str | Path, *, sep: str = ",", bom: bool = False) -> LoadResult:
    """Write formatted Arrow tables (:func:`csv_table`) as one CSV file, published atomically.

    Example:
        >>> write_csv_tables([csv_table(df, CsvOptions())], "pedidos.csv", bom=True)  # doctest: +SKIP
    """
    started = time.perf_counter()
    target = resolve_output_path(path)
    n_rows = 0
    with atomic_output(target) as tmp, open(tmp, "wb") as handle:
        if bom:
            handle.write(UTF8_BOM)
        writer = None
        for table in tables:
            if writer is None:
                writer = pv.CSVWriter(handle, table.schema, write_options=pv.WriteOptions(delimiter=sep))
            writer.write_table(table)
            n_rows += table.num_rows
        if writer is None:  # no chunk at all: an empty file
            handle.write(b"")
        else:
            writer.close()
    return LoadResult(
        target=str(target),
        n_inserted=n_rows,
        duration_s=time.perf_counter() - started,
        details={"format": "csv", "sep": sep, "bom": bom},
    )


# -- the public function -----------------------------------------------------------------------


@dataclass
class ExportResult:
    """What an export wrote: the file, its format, the rows and the run that recorded it."""

    path: Path
    format: str
    n_rows: int
    run_id: int | None
    duration_s: float
    details: dict[str, Any] = field(default_factory=dict)


def export_source(
    source: str,
    format: str,
    path: str | Path,
    *,
    filters: Mapping[str, Any] | None = None,
    fields: Sequence[str] | None = None,
    chunksize: int = DEFAULT_CHUNKSIZE,
    sep: str = ",",
    bom: bool = False,
    decimal_comma: bool = False,
    escape_formulas: bool = True,
    sheet: str | None = None,
    row_group_size: int | None = None,
    queryset: models.QuerySet | None = None,
    triggered_by: str = "",
    using: str | None = None,
) -> ExportResult:
    """Export ``source`` to ``path`` (under ``DW_OUTPUT_DIR``) as one run of the ``export`` pipeline.

    Args:
        source: a model label (``sales.Pedido``), a warehouse table (``fact_sales``) or a
            registered query (see :func:`registered_queries`).
        format: ``parquet``, ``csv`` or ``xlsx``.
        path: output file name, relative to ``DW_OUTPUT_DIR`` (or absolute inside it).
        filters: Django lookups (``{"criado_em__gte": "2024-01-01"}``), or the bind
            parameters of a SQL query.
        fields: columns to export (``values()`` paths such as ``cliente__uf``); default all.
        chunksize: rows per chunk; memory is bounded by it.
        sep, bom, decimal_comma, escape_formulas: CSV options (module docstring).
        sheet: Excel sheet name (default: the source's name).
        row_group_size: Parquet rows per row group (the writer buffers one row group;
            default 262,144).
        queryset: export this QuerySet instead of the source's (the admin's selection);
            ``source`` then only names the export.
        triggered_by: who asked, recorded with the run.
        using: database alias.

    Returns:
        An :class:`ExportResult`.

    Raises:
        UnknownSourceError: ``source`` names nothing exportable.
        ConfigurationError: an invalid option or filter.
        OutputPathError: ``path`` escapes ``DW_OUTPUT_DIR``.

    Example:
        >>> result = export_source("sales.Pedido", "csv", "pedidos.csv", sep=";",  # doctest: +SKIP
        ...                        decimal_comma=True, bom=True)
        >>> result.n_rows  # doctest: +SKIP
        1000000
    """
    params: dict[str, Any] = {
        "source": source,
        "format": format,
        "path": str(path),
        "chunksize": chunksize,
        "sep": sep,
        "bom": bom,
        "decimal_comma": decimal_comma,
        "escape_formulas": escape_formulas,
    }
    if filters:
        params["filters"] = dict(filters)
    if fields:
        params["fields"] = list(fields)
    if sheet:
        params["sheet"] = sheet
    if row_group_size:
        params["row_group_size"] = row_group_size
    pipeline = ExportPipeline(queryset=queryset, using=using, **params)
    log = pipeline.run(triggered_by=triggered_by)
    return ExportResult(
        path=pipeline.target,
        format=format,
        n_rows=log.n_processed,
        run_id=log.run_id,
        duration_s=log.duration_s,
        details={"peak_rss_mb": log.peak_rss_mb},
    )


# -- background exports from the admin ---------------------------------------------------------


_QUERY_SALT = "dw_analytics.jobs.export.query"


def query_sign(query: Any) -> bytes:
    """Django's pickled query, prefixed by an HMAC-SHA256 of it keyed by ``SECRET_KEY``.

    The admin stores the changelist's exact selection this way; only bytes
    this project signed are ever unpickled (:func:`query_unsign`).

    Example:
        >>> blob = query_sign(Pedido.objects.filter(quantidade__gt=1).query)  # doctest: +SKIP
    """
    data = pickle.dumps(query)
    return salted_hmac(_QUERY_SALT, data, algorithm="sha256").digest() + data


def query_unsign(blob: bytes) -> Any:
    """The query signed by :func:`query_sign`; refuses anything whose signature does not match."""
    signature, data = blob[:32], blob[32:]
    expected = salted_hmac(_QUERY_SALT, data, algorithm="sha256").digest()
    if not hmac.compare_digest(signature, expected):
        raise JobError("the stored export query is not signed by this project; refusing to load it")
    return pickle.loads(data)  # signed above: written by this project's admin action only


def run_export_job(job_id: int) -> None:
    """Run the :class:`~dw_analytics.ops.models.ExportJob` ``job_id`` and record the outcome.

    Called by the Celery task ``dw_analytics.ops.export`` (or inline when no worker runs).
    Failures are recorded on the job (status ``failed`` with the error), not raised.

    Example:
        >>> run_export_job(42)  # doctest: +SKIP
    """
    from dw_analytics.ops.models import ExportJob

    job = ExportJob.objects.get(pk=job_id)
    job.status = ExportJob.Status.RUNNING
    job.save(update_fields=["status"])
    queryset = None
    if job.query_pickle:
        model = get_model(job.source)
        queryset = model.objects.all()
        queryset.query = query_unsign(bytes(job.query_pickle))
    user = job.requested_by.get_username() if job.requested_by_id else "admin"
    try:
        result = export_source(
            job.source,
            job.format,
            job.path,
            filters=job.filters or None,
            fields=job.fields or None,
            queryset=queryset,
            triggered_by=user,
            **(job.options or {}),
        )
    except Exception as exc:  # noqa: BLE001 - recorded on the job, shown in the admin
        job.status = ExportJob.Status.FAILED
        job.error = f"{type(exc).__name__}: {exc}"
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "error", "finished_at"])
        return
    job.status = ExportJob.Status.SUCCEEDED
    job.n_rows = result.n_rows
    job.run_id = result.run_id
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "n_rows", "run", "finished_at"])
