"""The nightly refresh: external rows, the star schema and aggregates, the published files."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import timedelta
from typing import Any

import pandas as pd
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from dw_analytics.core.pipeline import BasePipeline
from dw_analytics.core.registry import register
from dw_analytics.extract.queryset import read_queryset
from dw_analytics.load.parquet import SnapshotResult, list_snapshot_versions, open_snapshot, publish_snapshot
from dw_analytics.load.paths import resolve_output_path
from dw_analytics.pipelines.etl import ETLPipeline
from dw_analytics.pipelines.star_schema import DIMENSION_MODELS, StarSchemaPipeline, in_months
from dw_analytics.reports import sales_report
from dw_analytics.warehouse.models import (
    DimCategory,
    DimCustomer,
    DimDate,
    DimProduct,
    FactSales,
    SalesByCategory,
    SalesByCategoryMonth,
)
from dw_analytics.warehouse.watermarks import Position, watermark_advance, watermark_get

#: ratio columns (6 decimal places) go to Power BI as doubles: its fixed decimal keeps only 4
RATIO_COLUMNS = ("margem",)
#: Parquet table name -> warehouse model, in the published snapshot
SNAPSHOT_TABLES = {
    "dim_date": DimDate,
    "dim_category": DimCategory,
    "dim_product": DimProduct,
    "dim_customer": DimCustomer,
    "fact_sales": FactSales,
    "sales_by_category": SalesByCategory,
    "sales_by_category_month": SalesByCategoryMonth,
}
#: partition columns of the published tables (also real columns in the files)
SNAPSHOT_PARTITIONS = {"fact_sales": ["month_key"]}
POWERBI_FOLDER = "powerbi"
#: rows per chunk read from a warehouse table into the snapshot (memory ~ one chunk)
PUBLISH_CHUNK_ROWS = 200_000
#: the Watermark row naming the last run that changed the warehouse
WAREHOUSE_VERSION = "warehouse.version"


@register
class NightlyPipeline(BasePipeline):
    """Refresh the warehouse and the files Power BI and analysts read.

    In one transaction: ``etl``, then ``star_schema`` (incremental unless
    ``mode`` says otherwise). After the commit, the warehouse tables are
    published as one Parquet snapshot under ``DW_OUTPUT_DIR/powerbi/``
    (``current/`` always names a complete version) and an Excel report as
    ``reports/<date>.xlsx``.

    A failure inside the transaction leaves the previous warehouse (rolled
    back) and the previous snapshot (never switched). A failure while
    publishing leaves the committed warehouse and the previous snapshot; the
    snapshot records the warehouse version it shows, so the next run
    publishes again even when it finds no new data. A night without changes
    keeps the current snapshot.

    Example:
        >>> log = NightlyPipeline().run()  # doctest: +SKIP
        >>> sorted(log.result["outputs"])  # doctest: +SKIP
        ['excel_report', 'powerbi_snapshot']
    """

    name = "nightly"
    description = "Nightly refresh: etl, star schema + aggregates, Parquet snapshot for Power BI, Excel report"
    freshness = timedelta(hours=26)
    parameters = StarSchemaPipeline.parameters

    def execute(self) -> dict[str, Any]:
        ETLPipeline(using=self.using).execute_within(self)
        star = StarSchemaPipeline(using=self.using, **self.params).execute_within(self)
        star["previous_version"] = _version_name(watermark_get(WAREHOUSE_VERSION, using=self.using))
        if star["changed"]:
            # The warehouse's version is the last run that changed it; the snapshot records
            # the version it shows, so a publish that failed after the commit is redone next run.
            watermark_advance(WAREHOUSE_VERSION, Position(self.log.started_at, self.log.run_id), using=self.using)
        return star

    def publish(self, star: dict[str, Any]) -> dict[str, Any]:
        """After the commit: the Parquet snapshot when the warehouse moved past it, and the day's report.

        When the current snapshot shows the version just before this run, only
        the fact's months and the dimensions this run changed are rewritten; the
        other monthly partitions and dimension tables are carried over from the
        current snapshot by hard link.
        """
        wanted = _version_name(watermark_get(WAREHOUSE_VERSION, using=self.using))
        shown = _snapshot_version(POWERBI_FOLDER)
        if shown is not None and shown == wanted:
            snapshot = f"{resolve_output_path(POWERBI_FOLDER)} (unchanged)"
        else:
            incremental = shown is not None and shown == star["previous_version"] and not star["rebuilt"]
            if incremental:
                unchanged = set(DIMENSION_MODELS) - set(star["changed_dimensions"])
                result = self.publish_snapshot(wanted, only_months=star["touched_months"], unchanged=unchanged)
            else:
                result = self.publish_snapshot(wanted)
            snapshot = str(result.target)
        star["outputs"] = {"powerbi_snapshot": snapshot, "excel_report": self.publish_report()}
        return star["outputs"]

    def publish_snapshot(
        self, warehouse_version: str, *, only_months: list[int] | None = None, unchanged: Collection[str] = ()
    ) -> SnapshotResult:
        """Export the warehouse tables into a new Parquet snapshot version.

        ``fact_sales`` is partitioned by ``month_key`` (yyyymm, also a column);
        with ``only_months`` just those partitions are written and the others
        are carried over from the current version, as are the ``unchanged``
        tables (hard links, see :func:`publish_snapshot`).
        """
        tables = {
            name: _for_powerbi(
                read_queryset(model.objects.using(self.using).order_by("pk").values(), chunksize=PUBLISH_CHUNK_ROWS)
            )
            for name, model in SNAPSHOT_TABLES.items()
            if name != "fact_sales" and name not in unchanged
        }
        facts = FactSales.objects.using(self.using)
        reuse = None
        if only_months is None:
            fact_chunks = read_queryset(facts.order_by("pk").values(), chunksize=PUBLISH_CHUNK_ROWS)
        else:
            fact_chunks = _months_in_key_order(facts, only_months)
            published = open_snapshot(POWERBI_FOLDER).manifest["tables"]["fact_sales"]["files"]
            reuse = {"fact_sales": {f.split("/")[1] for f in published} - {f"month_key={m}" for m in only_months}}
        tables["fact_sales"] = _with_month_key(fact_chunks)
        return publish_snapshot(
            tables,
            POWERBI_FOLDER,
            run_id=self.log.run_id,
            partition_cols=SNAPSHOT_PARTITIONS,
            reuse_partitions=reuse,
            reuse_tables=unchanged,
            descriptions={name: (model.__doc__ or "").strip() for name, model in SNAPSHOT_TABLES.items()},
            metadata={"warehouse_version": warehouse_version},
        )

    def publish_report(self) -> str:
        """The day's Excel report: sales by category and by month, a chart sheet, and the charts
        as PNG files when ``settings.DW_REPORT_PNG`` is on."""
        by_category = read_queryset(
            SalesByCategory.objects.using(self.using).values(
                "categoria", "total_vendas", "receita", "valor_medio", "lucro", "margem"
            )
        )
        monthly = read_queryset(
            SalesByCategoryMonth.objects.using(self.using)
            .order_by("month_key", "categoria")
            .values("month_key", "categoria", "total_vendas", "quantidade", "receita", "lucro")
        )
        report = sales_report(
            f"reports/{timezone.localdate().isoformat()}.xlsx",
            by_category=by_category,
            monthly=monthly,
            png=settings.DW_REPORT_PNG,
        )
        return str(report.target)


def _for_powerbi(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for chunk in chunks:
        ratios = [c for c in RATIO_COLUMNS if c in chunk.columns]
        yield chunk.astype({c: "float64" for c in ratios}) if ratios else chunk


def _months_in_key_order(facts: QuerySet, months: list[int]) -> Iterator[pd.DataFrame]:
    """The fact rows of ``months``, one month at a time, each sorted by ``order_id``.

    The rows come out as a full publish writes them (key order within each
    month), but each month is read as a range of the ``date_key`` index and
    sorted here: asked for ``ORDER BY order_id``, SQLite walks the whole key
    index instead (1.9 s of an incremental night at 1M orders, growing with the
    history). Memory: one month's rows.
    """
    for month in months:
        frame = read_queryset(facts.filter(in_months([month])).order_by().values())
        yield frame.sort_values("order_id", ignore_index=True)
    if not months:
        yield read_queryset(facts.none().values())  # the table's columns, no rows


def _with_month_key(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for chunk in chunks:
        yield chunk.assign(month_key=chunk["date_key"].to_numpy() // 100)


def _version_name(position: Position | None) -> str:
    return "" if position is None else str(position.id)


def _snapshot_version(folder: str) -> str | None:
    """The warehouse version the current snapshot shows; None when nothing is published."""
    if not list_snapshot_versions(folder):
        return None
    return open_snapshot(folder).manifest.get("metadata", {}).get("warehouse_version", "")
