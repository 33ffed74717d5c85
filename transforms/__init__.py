"""Pure pandas transforms: DataFrame in, DataFrame out. No Django, no I/O.

Example:
    >>> from transforms import rollup
"""

from transforms.dates import dim_date
from transforms.rollup import rollup
from transforms.sales import (
    customer_metrics,
    growth,
    sales_by_category,
    sales_by_period,
    sales_by_product,
    top_products,
)
from transforms.star import dim_category, dim_customer, dim_product, fact_sales, fact_sales_chunks

__all__ = [
    "rollup",
    "sales_by_category",
    "sales_by_product",
    "sales_by_period",
    "top_products",
    "customer_metrics",
    "growth",
    "dim_date",
    "dim_category",
    "dim_customer",
    "dim_product",
    "fact_sales",
    "fact_sales_chunks",
]
