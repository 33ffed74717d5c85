"""The analyst's entry points: what is in the warehouse, load a table, prototype a pipeline.

Written for Jupyter::

    import dw_analytics as dw
    dw.setup()
    dw.catalog()                                   # tables, Parquet files, rows, last refresh
    fact = dw.load_table("fact_sales")             # exact decimals, from the database
    dates = dw.load_table("dim_date", source="parquet")   # what Power BI reads
    Basket = dw.pipeline_from_function("basket_by_state", extract=..., transform=...)
    dw.run("basket_by_state").result

Every function configures Django on first use if :func:`dw_analytics.setup`
was not called yet.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import pandas as pd

from dw_analytics.core.exceptions import ConfigurationError
from dw_analytics.extract.exceptions import SourceNotFoundError

__all__ = ["catalog", "load_table", "pipeline_from_function"]

Source = Literal["database", "parquet"]
CATALOG_COLUMNS = [
    "name",
    "kind",
    "layer",
    "rows",
    "columns",
    "last_refresh",
    "path",
    "description",
]
_WRITE_MODES = ("append", "replace", "upsert")
_PIPELINE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _ensure_setup() -> None:
    from dw_analytics import setup

    setup()


def _local_zone() -> str:
    from django.conf import settings

    return settings.TIME_ZONE


# -- catalog -------------------------------------------------------------------------
def catalog(*, include_sources: bool = True, using: str = "default") -> pd.DataFrame:
    """The warehouse tables, the operational tables and the current Parquet snapshot.

    One row per dataset:

    * ``name``: what :func:`load_table` takes (``fact_sales``, ``pedido``...);
    * ``kind``: ``table`` (database) or ``parquet`` (a file of the snapshot);
    * ``layer``: ``warehouse`` (built by the pipelines), ``source`` (the
      operational ``sales`` app) or ``snapshot`` (published for Power BI);
    * ``rows``, ``columns``: counts;
    * ``last_refresh``: the end of the last successful run of a pipeline that
      writes the table (NaT when none has run, or for operational tables), or
      the snapshot's creation time; in ``settings.TIME_ZONE``;
    * ``path``: the database table, or the Parquet file of the current version;
    * ``description``: the model docstring.

    Run history, quarantine, watermarks and locks are left out (see
    ``manage.py pipeline_history``).

    Args:
        include_sources: list the operational ``sales`` tables too.
        using: the database alias.

    Example:
        >>> import dw_analytics as dw
        >>> dw.setup()
        >>> dw.catalog()[["name", "kind", "rows"]].head(3)  # doctest: +SKIP
                   name   kind  rows
        0  dim_category  table    15
        1  dim_customer  table   334
        2      dim_date  table   731
    """
    _ensure_setup()
    from dw_analytics.warehouse import dictionary

    refreshed = _last_refresh_by_table(using)
    rows = [
        _table_row(name, model, "warehouse", refreshed.get(name), using)
        for name, model in dictionary.warehouse_tables().items()
    ]
    if include_sources:
        rows += [
            _table_row(name, model, "source", refreshed.get(name), using)
            for name, model in dictionary.source_tables().items()
        ]
    rows += _snapshot_rows()
    frame = pd.DataFrame(rows, columns=CATALOG_COLUMNS)
    frame["rows"] = frame["rows"].astype("int64")
    frame["columns"] = frame["columns"].astype("int64")
    frame["last_refresh"] = pd.to_datetime(frame["last_refresh"], utc=True).dt.tz_convert(_local_zone())
    return frame


def _table_row(name: str, model: Any, layer: str, refreshed: Any, using: str) -> dict[str, Any]:
    from dw_analytics.warehouse.dictionary import table_description

    return {
        "name": name,
        "kind": "table",
        "layer": layer,
        "rows": model.objects.using(using).count(),
        "columns": len(model._meta.concrete_fields),
        "last_refresh": refreshed,
        "path": model._meta.db_table,
        "description": table_description(model),
    }


def _last_refresh_by_table(using: str) -> dict[str, Any]:
    """Table -> end of the last successful run of any pipeline that writes it."""
    from django.db.models import Max

    from dw_analytics.core.registry import all_pipelines
    from dw_analytics.warehouse.dictionary import TABLE_WRITERS
    from dw_analytics.warehouse.models import PipelineRun

    writers: dict[str, set[str]] = {table: set(names) for table, names in TABLE_WRITERS.items()}
    for pipeline_name, cls in all_pipelines().items():
        for table in getattr(cls, "writes", ()):
            writers.setdefault(table, set()).add(pipeline_name)
    every_writer = set().union(*writers.values()) if writers else set()
    finished = dict(
        PipelineRun.objects.using(using)
        .filter(status=PipelineRun.Status.SUCCEEDED, pipeline__in=sorted(every_writer))
        .values("pipeline")
        .annotate(last=Max("finished_at"))
        .values_list("pipeline", "last")
    )
    result = {}
    for table, names in writers.items():
        times = [finished[n] for n in names if finished.get(n) is not None]
        if times:
            result[table] = max(times)
    return result


def _snapshot_rows() -> list[dict[str, Any]]:
    from dw_analytics.load.exceptions import SnapshotError
    from dw_analytics.load.parquet import open_snapshot
    from dw_analytics.pipelines.nightly import POWERBI_FOLDER, SNAPSHOT_TABLES
    from dw_analytics.warehouse.dictionary import table_description

    try:
        snapshot = open_snapshot(POWERBI_FOLDER)
    except SnapshotError:  # nothing published yet: no Parquet rows
        return []
    created_at = snapshot.manifest.get("created_at")
    rows = []
    for name, entry in snapshot.manifest["tables"].items():
        model = SNAPSHOT_TABLES.get(name)
        rows.append(
            {
                "name": name,
                "kind": "parquet",
                "layer": "snapshot",
                "rows": entry["n_rows"],
                "columns": len(entry["schema"]),
                "last_refresh": created_at,
                "path": str(snapshot.path / entry["path"]),
                "description": table_description(model) if model is not None else "",
            }
        )
    return rows


# -- load_table ------------------------------------------------------------------------
def load_table(
    name: str,
    *,
    source: Source = "database",
    columns: Sequence[str] | None = None,
    limit: int | None = None,
    using: str = "default",
) -> pd.DataFrame:
    """One table as a DataFrame: from the database, or from the current Parquet snapshot.

    From the database the rows are read with :func:`dw_analytics.read_queryset`
    in primary-key order (decimals exact, ``decimal128`` with the field's
    precision; datetimes tz-aware in ``settings.TIME_ZONE``). From Parquet the
    table is read with :func:`dw_analytics.read_snapshot`, following the
    ``CURRENT`` pointer: exactly what Power BI sees (``decimal128(19, s)``,
    naive São Paulo timestamps).

    Args:
        name: a name from :func:`catalog` (``fact_sales``, ``dim_date``,
            ``pedido``...); the database table name (``dw_fact_sales``) works too.
        source: ``"database"`` (default) or ``"parquet"``.
        columns: only these columns.
        limit: at most this many rows (the first by primary key; database only),
            handy for trying a transform on a sample.
        using: the database alias.

    Raises:
        SourceNotFoundError: unknown name (the message lists the valid ones),
            or nothing published yet for ``source="parquet"``.
        ConfigurationError: an unknown ``source`` or a bad ``limit``.

    Example:
        >>> fact = load_table("fact_sales")  # doctest: +SKIP
        >>> fact["total"].dtype  # doctest: +SKIP
        decimal128(14, 2)[pyarrow]
        >>> load_table("fact_sales", source="parquet")["total"].dtype  # doctest: +SKIP
        decimal128(19, 2)[pyarrow]
    """
    _ensure_setup()
    if source not in ("database", "parquet"):
        raise ConfigurationError(f"source must be 'database' or 'parquet', got {source!r}")
    if limit is not None and limit < 0:
        raise ConfigurationError(f"limit must be >= 0, got {limit}")
    if source == "parquet":
        if limit is not None:
            raise ConfigurationError("limit applies to source='database' only")
        return _load_parquet(name, columns)
    from dw_analytics.extract.queryset import read_queryset

    model = _model_for(name)
    queryset = model.objects.using(using).order_by("pk")
    queryset = queryset.values(*columns) if columns else queryset.values()
    if limit is not None:
        queryset = queryset[:limit]
    return read_queryset(queryset)


def _model_for(name: str) -> Any:
    from dw_analytics.warehouse.dictionary import source_tables, warehouse_tables

    tables = {**warehouse_tables(), **source_tables()}
    model = tables.get(name) or next((m for m in tables.values() if m._meta.db_table == name), None)
    if model is None:
        raise SourceNotFoundError(
            f"unknown table {name!r}; valid tables: {', '.join(tables)} "
            "(dw.catalog() lists them with their row counts)",
            table=name,
        )
    return model


def _load_parquet(name: str, columns: Sequence[str] | None) -> pd.DataFrame:
    from dw_analytics.load.exceptions import SnapshotError
    from dw_analytics.load.parquet import open_snapshot
    from dw_analytics.pipelines.nightly import POWERBI_FOLDER

    try:
        snapshot = open_snapshot(POWERBI_FOLDER)
    except SnapshotError as exc:
        raise SourceNotFoundError(
            f"no Parquet snapshot to read: {exc}. Run the nightly pipeline first: dw.run('nightly')",
            table=name,
        ) from exc
    if name not in snapshot.tables:
        raise SourceNotFoundError(
            f"unknown Parquet table {name!r}; the current snapshot ({snapshot.version}) has: "
            f"{', '.join(sorted(snapshot.tables))}",
            table=name,
        )
    from dw_analytics.load.parquet import read_snapshot

    return read_snapshot(POWERBI_FOLDER, name, columns=columns)


# -- prototyping a pipeline ---------------------------------------------------------------
def pipeline_from_function(
    name: str,
    *,
    extract: Any,
    transform: Callable[[Any], pd.DataFrame],
    load: Any = None,
    chunksize: int | None = None,
    chunked: bool = False,
    mode: str = "replace",
    unique_fields: Sequence[str] | None = None,
    description: str = "",
) -> type:
    """Turn a notebook's functions into a registered pipeline that ``dw.run(name)`` runs.

    The result is a :class:`~dw_analytics.core.pipeline.BasePipeline` subclass:
    the run is atomic, measured and recorded in the run history like any other.
    Calling this again with the same ``name`` replaces the previous prototype
    (a notebook cell can be re-run); the project's own pipelines cannot be
    replaced. A prototype lives in the Python process that defined it: to run
    it from cron or Celery, move the transform into ``transforms/`` and the
    wiring into ``dw_analytics/pipelines/``.

    How the three steps are called:

    * ``extract``: a QuerySet (read with ``read_queryset``; a ``values()``
      QuerySet keeps its columns) or a function of no arguments returning a
      DataFrame or an iterable of DataFrames.
    * ``transform``: receives the extracted DataFrame; with ``chunksize``, the
      **iterator of chunks** (pass it to ``transforms.rollup`` so memory stays
      bounded); with ``chunked=True``, **each chunk** separately (the result of
      each is loaded before the next chunk is read).
    * ``load``: None (the output is only returned as ``log.result``), a Django
      model (``write_model(result, Model, mode=mode, unique_fields=...)``; with
      ``chunked=True`` a ``"replace"`` applies to the first chunk, the others
      are appended), or a function receiving the result (e.g. ``lambda df:
      dw.write_parquet(df, "metrics/x.parquet")``).

    ``chunksize`` can be changed per run: ``dw.run(name, chunksize=10_000)``.

    Args:
        name: the pipeline name: lower case letters, digits and ``_``.
        extract: QuerySet or callable, see above.
        transform: the function under test.
        load: None, a model class or a callable, see above.
        chunksize: rows per chunk read from the QuerySet (None: one DataFrame).
        chunked: transform and load chunk by chunk (needs ``chunksize`` and a ``load``).
        mode: ``write_model`` mode when ``load`` is a model.
        unique_fields: ``write_model`` key fields for ``mode="upsert"``.
        description: shown by ``manage.py list_pipelines``.

    Returns:
        The registered pipeline class.

    Raises:
        ConfigurationError: an invalid argument, or ``name`` belongs to a
            project pipeline.

    Example:
        >>> from transforms import rollup
        >>> orders = Pedido.objects.values("id", "total", uf=F("cliente__uf"))  # doctest: +SKIP
        >>> dw.pipeline_from_function(  # doctest: +SKIP
        ...     "basket_by_state", extract=orders, chunksize=50_000,
        ...     transform=lambda chunks: rollup(chunks, by="uf", ticket_medio=("total", "mean")))
        >>> dw.run("basket_by_state").result  # doctest: +SKIP
    """
    _ensure_setup()
    from django.db import models
    from django.db.models.query import QuerySet

    from dw_analytics.core.pipeline import BasePipeline
    from dw_analytics.core.registry import all_pipelines, register, unregister
    from dw_analytics.warehouse.dictionary import table_name

    if not isinstance(name, str) or not _PIPELINE_NAME.match(name):
        raise ConfigurationError(
            f"pipeline name must be lower case letters, digits and '_' (e.g. 'basket_by_state'), got {name!r}"
        )
    if not (isinstance(extract, QuerySet) or callable(extract)):
        raise ConfigurationError(
            f"extract must be a QuerySet or a function returning DataFrames, got {type(extract).__name__}"
        )
    if not callable(transform):
        raise ConfigurationError(f"transform must be a function, got {type(transform).__name__}")
    load_model = isinstance(load, type) and issubclass(load, models.Model)
    if load is not None and not load_model and not callable(load):
        raise ConfigurationError(f"load must be None, a Django model or a function, got {type(load).__name__}")
    if chunksize is not None and (not isinstance(chunksize, int) or chunksize < 1):
        raise ConfigurationError(f"chunksize must be a positive number of rows, got {chunksize!r}")
    if chunked and (chunksize is None or load is None):
        raise ConfigurationError("chunked=True needs a chunksize and a load (each chunk's result is written, not kept)")
    if load_model:
        if mode not in _WRITE_MODES:
            raise ConfigurationError(f"mode must be one of {', '.join(_WRITE_MODES)}, got {mode!r}")
        if mode == "upsert" and not unique_fields:
            raise ConfigurationError("mode='upsert' needs unique_fields")
    existing = all_pipelines().get(name)
    if existing is not None and not getattr(existing, "prototype", False):
        raise ConfigurationError(
            f"{name!r} is a project pipeline ({existing.__module__}.{existing.__qualname__}); "
            "choose another name for the prototype"
        )

    def run_extract(self: BasePipeline) -> Any:
        size = self.params.get("chunksize", chunksize)
        if isinstance(extract, QuerySet):
            from dw_analytics.extract.queryset import read_queryset

            return read_queryset(extract.using(self.using), chunksize=size)
        data = extract()
        if size is not None and isinstance(data, Iterable) and not isinstance(data, pd.DataFrame):
            return iter(data)
        return data

    def run_transform(self: BasePipeline, data: Any) -> Any:
        return transform(data)

    def run_load(self: BasePipeline, result: Any) -> Any:
        if load is None:
            return None
        if not load_model:
            return load(result)
        from dw_analytics.load.models import write_model

        write_mode = mode
        if chunked and mode == "replace" and self._loaded_once:
            write_mode = "append"
        self._loaded_once = True
        return write_model(result, load, mode=write_mode, unique_fields=unique_fields, using=self.using)

    def execute(self: BasePipeline) -> Any:
        self._loaded_once = False
        return BasePipeline.execute(self)

    class_name = "".join(part.title() for part in name.split("_")) + "Prototype"
    cls = type(
        class_name,
        (BasePipeline,),
        {
            "__doc__": description or f"Notebook prototype {name!r} ({transform.__name__}).",
            "__module__": __name__,
            "__qualname__": class_name,
            "name": name,
            "description": description or f"notebook prototype: {getattr(transform, '__name__', 'transform')}",
            "parameters": {"chunksize": int},
            "chunked": chunked,
            "prototype": True,
            "writes": (table_name(load),) if load_model else (),
            "extract": run_extract,
            "transform": run_transform,
            "load": run_load,
            "execute": execute,
        },
    )
    unregister(name)
    return register(cls)
