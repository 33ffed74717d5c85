"""The nightly refresh: external rows, the star schema and aggregates, the published files."""

from __future__ import annotations

from datetime import timedelta
from collections.abc import Iterator
from typing import Any

import pandas as pd

from django.utils import timezone

from dw_analytics.core.pipeline import BasePipeline
from dw_analytics.core.registry import register
from dw_analytics.extract.queryset import read_queryset
from dw_analytics.load.excel import write_excel
from dw_analytics.load.parquet import publish_snapshot
from dw_analytics.pipelines.etl import ETLPipeline
from dw_analytics.pipelines.star_schema import StarSchemaPipeline
from dw_analytics.warehouse.models import (
    DimCategory,
    DimCustomer,
    DimDate,
    DimProduct,
    FactSales,
    SalesByCategory,
    SalesByCategoryMonth,
)

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
POWERBI_FOLDER = "powerbi"


@register
class NightlyPipeline(BasePipeline):
    """Refresh the warehouse and the files Power BI and analysts read.

    In one transaction: ``etl``, then ``star_schema`` (incremental unless
    ``mode`` says otherwise). Then the warehouse tables are published as one
    Parquet snapshot under ``DW_OUTPUT_DIR/powerbi/`` (``current/`` always
    names a complete version) and an Excel report as
    ``reports/<date>.xlsx``. A failure before the end leaves the previous
    warehouse (rolled back) and the previous snapshot (never switched) in place.

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
        outputs = self.step("publish", self.publish)
        return {**star, "outputs": outputs}

    def publish(self) -> dict[str, str]:
        """Export the warehouse tables: one Parquet snapshot, one Excel report."""
        tables = {
            name: _ratios_as_float(read_queryset(model.objects.using(self.using).order_by("pk").values(), chunksize=500_000))
            for name, model in SNAPSHOT_TABLES.items()
        }
        snapshot = publish_snapshot(
            tables,
            POWERBI_FOLDER,
            run_id=self.log.run_id,
            descriptions={name: (model.__doc__ or "").strip() for name, model in SNAPSHOT_TABLES.items()},
        )
        by_category = read_queryset(SalesByCategory.objects.using(self.using).values(
            "categoria", "total_vendas", "receita", "valor_medio", "lucro", "margem"
        ))
        monthly = read_queryset(SalesByCategoryMonth.objects.using(self.using).order_by("month_key", "categoria").values(
            "month_key", "categoria", "total_vendas", "quantidade", "receita", "lucro"
        ))
        report = write_excel(
            {"Vendas por categoria": by_category, "Vendas por mês": monthly},
            f"reports/{timezone.localdate().isoformat()}.xlsx",
        )
        return {"powerbi_snapshot": str(snapshot.target), "excel_report": str(report.target)}


def _ratios_as_float(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for chunk in chunks:
        ratios = [c for c in RATIO_COLUMNS if c in chunk.columns]
        yield chunk.astype({c: "float64" for c in ratios}) if ratios else chunk
