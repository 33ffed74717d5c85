"""Schemas of the transform outputs and the fact's referential check."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.transforms.frames import categories, customers, money, orders, products
from transforms.dates import dim_date
from transforms.exceptions import SchemaViolation
from transforms.sales import (
    customer_metrics,
    sales_by_category,
    sales_by_period,
    sales_by_product,
    top_products,
)
from transforms.star import dim_category, dim_customer, dim_product, fact_sales
from transforms.validation import SCHEMAS, check_references, validate, validate_star


def _star() -> dict[str, pd.DataFrame]:
    dp = dim_product(products(), categories())
    dc, dk = dim_customer(customers()), dim_category(categories())
    return {
        "dim_date": dim_date("2024-01-01", "2025-12-31"),
        "dim_category": dk,
        "dim_product": dp,
        "dim_customer": dc,
        "fact_sales": fact_sales(orders(), dp, dc, dk),
    }


def test_every_output_passes_its_schema():
    star = _star()
    validate_star(**star)
    by_product = sales_by_product(orders(), products(), categories())
    outputs = {
        "sales_by_category": sales_by_category(orders(), products(), categories()),
        "sales_by_product": by_product,
        "top_products": top_products(by_product, 2),
        "sales_by_period": sales_by_period(orders(), "week"),
        "customer_metrics": customer_metrics(orders(), "2025-01-31"),
    }
    for table, frame in outputs.items():
        assert validate(table, frame) is frame
    assert set(SCHEMAS) == {*star, *outputs}


def test_a_duplicate_key_names_table_column_and_values():
    dk = dim_category(pd.DataFrame({"id": [1, 1], "nome": ["a", "b"]}))
    with pytest.raises(SchemaViolation) as error:
        validate("dim_category", dk)
    assert (error.value.table, error.value.column) == ("dim_category", "category_key")
    assert error.value.values == [1, 1]
    assert "dim_category.category_key" in str(error.value)


def test_a_value_out_of_range_is_reported_with_the_failing_values():
    fact = _star()["fact_sales"]
    fact.loc[[0, 3], "quantidade"] = [-1, -7]
    with pytest.raises(SchemaViolation) as error:
        validate("fact_sales", fact)
    assert error.value.column == "quantidade" and error.value.values == [-1, -7]
    assert error.value.n_failures == 2


def test_negative_money_and_wrong_profit_are_violations():
    fact = _star()["fact_sales"]
    fact["custo"] = money("6.00", "60.00", "18.00", "-2.50", "1.00")
    with pytest.raises(SchemaViolation, match="custo"):
        validate("fact_sales", fact)
    fact = _star()["fact_sales"]
    fact["total"] = money("10.01", "100.00", "30.00", "5.00", "7.00")
    with pytest.raises(SchemaViolation, match="lucro == total - custo"):
        validate("fact_sales", fact)


def test_a_wrong_dtype_is_a_violation():
    sales = sales_by_category(orders(), products(), categories())
    sales["receita"] = sales["receita"].astype(float)
    with pytest.raises(SchemaViolation) as error:
        validate("sales_by_category", sales)
    assert error.value.column == "receita"


def test_two_current_versions_of_a_product_are_a_violation():
    dp = dim_product(products(), categories())
    doubled = pd.concat(
        [
            dp,
            dp.iloc[[1]].assign(product_key=9, valid_from=pd.Timestamp("2024-01-01", tz="America/Sao_Paulo")),
        ],
        ignore_index=True,
    )
    with pytest.raises(SchemaViolation, match="one current version"):
        validate("dim_product", doubled)


def test_a_fact_key_missing_from_its_dimension_is_named():
    star = _star()
    dp = star["dim_product"]
    with pytest.raises(SchemaViolation) as error:
        check_references(star["fact_sales"], {"dim_product": dp[dp["product_key"] != 1]})
    assert (error.value.table, error.value.column, error.value.values) == (
        "fact_sales",
        "product_key",
        [1],
    )
    assert "exists in dim_product.product_key" in str(error.value)


def test_a_date_outside_the_date_dimension_is_named():
    star = _star()
    star["dim_date"] = dim_date("2024-01-01", "2024-12-31")  # order 5 is on 1 January 2025
    with pytest.raises(SchemaViolation) as error:
        validate_star(**star)
    assert error.value.column == "date_key" and error.value.values == [20250101]


def test_unknown_table_lists_the_known_ones():
    with pytest.raises(KeyError, match="fact_sales"):
        validate("nope", pd.DataFrame())
