"""Exact aggregates of the sales fact that combine: per month and category, then per category."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from transforms._common import as_frames, require_columns
from transforms.rollup import rollup
from transforms.sales import SALES_MEASURES, sales_measures

#: partial sums kept per (month_key, category_key); summing them over months is exact
MONTH_TOTALS = {
    "total_vendas": ("order_id", "size"),
    "quantidade": ("quantidade", "sum"),
    "receita": ("total", "sum"),
    "lucro": ("lucro", "sum"),
}


def category_month_totals(
    fact_sales: pd.DataFrame | Iterable[pd.DataFrame], dim_category: pd.DataFrame
) -> pd.DataFrame:
    """Orders, units, revenue and profit per month (yyyymm) and category key, from fact rows.

    Args:
        fact_sales: rows (or chunks) of the fact with ``order_id``,
            ``date_key``, ``category_key``, ``quantidade``, ``total``, ``lucro``.
        dim_category: ``category_key``, ``categoria`` (names for the result).

    Returns:
        ``month_key``, ``category_key``, ``categoria``, ``total_vendas``,
        ``quantidade``, ``receita``, ``lucro``; sorted by month and category.

    Example:
        >>> from decimal import Decimal
        >>> from transforms.money import money_dtype
        >>> fact = pd.DataFrame({"order_id": [1, 2], "date_key": [20260105, 20260131],
        ...     "category_key": [3, 3], "quantidade": [1, 2],
        ...     "total": pd.Series([Decimal("10.00"), Decimal("5.50")], dtype=money_dtype()),
        ...     "lucro": pd.Series([Decimal("4.00"), Decimal("1.50")], dtype=money_dtype())})
        >>> cats = pd.DataFrame({"category_key": [3], "categoria": ["Livros"]})
        >>> category_month_totals(fact, cats).to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
        [{'month_key': 202601, 'category_key': 3, 'categoria': 'Livros', 'total_vendas': 2,
          'quantidade': 3, 'receita': Decimal('15.50'), 'lucro': Decimal('5.50')}]
    """

    def with_month(chunk: pd.DataFrame) -> pd.DataFrame:
        require_columns(
            chunk,
            "fact_sales",
            ["order_id", "date_key", "category_key", "quantidade", "total", "lucro"],
        )
        return chunk.assign(month_key=chunk["date_key"].to_numpy(np.int64) // 100)

    totals = rollup(
        (with_month(c) for c in as_frames(fact_sales)),
        by=["month_key", "category_key"],
        **MONTH_TOTALS,
    )
    names = dim_category.set_index("category_key")["categoria"]
    totals.insert(2, "categoria", totals["category_key"].map(names).fillna("Unknown").astype("str"))
    return totals


def sales_by_category_from_months(month_totals: pd.DataFrame) -> pd.DataFrame:
    """Sales by category (the ``analytics`` measures) from :func:`category_month_totals` rows.

    Sums of exact partial sums are exact, so this equals aggregating every
    order at once while reading only months x categories rows.

    Example:
        >>> sales_by_category_from_months(month_totals)  # doctest: +SKIP
    """
    require_columns(month_totals, "sales_by_category_month", ["category_key", "categoria", *MONTH_TOTALS])
    sums = {name: (name, "sum") for name in MONTH_TOTALS}
    totals = rollup(
        month_totals.rename(columns={"category_key": "categoria_id"}),
        by=["categoria_id", "categoria"],
        **sums,
    )
    keys = ["categoria_id", "categoria"]
    return sales_measures(totals.assign(n_total=totals["total_vendas"]), keys)[[*keys, *SALES_MEASURES]]
