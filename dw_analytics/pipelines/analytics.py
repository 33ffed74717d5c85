"""The seed's analytics: orders grouped by product category."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
from django.db.models import F
from django.utils import timezone

from dw_analytics.core.pipeline import BasePipeline
from dw_analytics.core.registry import register
from dw_analytics.extract.queryset import read_queryset
from dw_analytics.load.base import LoadResult
from dw_analytics.load.models import write_model
from dw_analytics.sales.models import Pedido
from dw_analytics.warehouse.models import SalesByCategory
from transforms.sales import sales_by_category


@register
class AnalyticsPipeline(BasePipeline):
    """Sales by product category: ``total_vendas``, ``valor_medio``, ``receita``, ``lucro``, ``margem``.

    Orders stream from the database in chunks and are rolled up exactly
    (decimal sums, mean = sum / count), so memory depends on the number of
    categories, not of orders. The result replaces the ``SalesByCategory``
    table atomically and is returned as ``log.result``.

    Example:
        >>> log = AnalyticsPipeline().run()  # doctest: +SKIP
        >>> log.result.columns.tolist()  # doctest: +SKIP
        ['categoria_id', 'categoria', 'total_vendas', 'receita', 'valor_medio', 'lucro', 'margem']
    """

    name = "analytics"
    description = "Orders by product category: count, average total, revenue, profit, margin"
    parameters = {"chunksize": int}

    def extract(self) -> Iterator[pd.DataFrame]:
        orders = Pedido.objects.using(self.using).values(
            "id",
            "quantidade",
            "total",
            "custo",
            categoria_id=F("produto__categoria_id"),
            categoria=F("produto__categoria__nome"),
        )
        return read_queryset(orders, chunksize=self.params.get("chunksize", 200_000))

    def transform(self, orders: Iterator[pd.DataFrame]) -> pd.DataFrame:
        return sales_by_category(orders)

    def load(self, table: pd.DataFrame) -> LoadResult:
        return write_model(
            table.assign(atualizado_em=timezone.now()), SalesByCategory, mode="replace", using=self.using
        )
