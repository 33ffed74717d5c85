"""Schemas of every transform output, and the star schema's referential check.

One pandera ``DataFrameSchema`` per table in :data:`SCHEMAS` (exact dtypes,
non-null and unique keys, value ranges, row-level rules such as
``lucro == total - custo``). :func:`validate` runs one and turns pandera's
report into a :class:`~transforms.exceptions.SchemaViolation` that names the
table, the column, the check and the failing values;
:func:`check_references` verifies that every fact key has its dimension row.

Example:
    >>> validate("dim_date", dim_date("2024-01-01", "2024-12-31"))  # doctest: +SKIP
    >>> validate_star(dates, categories, products, customers, fact)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import pandas as pd
import pandera.pandas as pa
import pyarrow
from pandera.errors import SchemaError, SchemaErrors

from transforms.dates import DIM_DATE_COLUMNS
from transforms.exceptions import SchemaViolation
from transforms.star import (
    DIM_CATEGORY_COLUMNS,
    DIM_CUSTOMER_COLUMNS,
    DIM_PRODUCT_COLUMNS,
    FACT_SALES_COLUMNS,
    UNKNOWN_KEY,
)

INT = "int64"
STR = "str"
BOOL = "bool"
DATE = pd.ArrowDtype(pyarrow.date32())
TIMESTAMP = pd.DatetimeTZDtype("us", "America/Sao_Paulo")
MONEY = pd.ArrowDtype(pyarrow.decimal128(14, 2))
PROFIT = pd.ArrowDtype(pyarrow.decimal128(15, 2))
SUM = pd.ArrowDtype(pyarrow.decimal128(38, 2))
AVERAGE = pd.ArrowDtype(pyarrow.decimal128(38, 4))
RATIO = pd.ArrowDtype(pyarrow.decimal128(38, 6))
ZERO = Decimal("0")

#: fact key column -> (dimension table, dimension key column)
FACT_REFERENCES = {
    "date_key": ("dim_date", "date_key"),
    "product_key": ("dim_product", "product_key"),
    "customer_key": ("dim_customer", "customer_key"),
    "category_key": ("dim_category", "category_key"),
}


def _key(**kwargs: object) -> pa.Column:
    """A surrogate / natural key: int64, non-null, unique, -1 or positive."""
    return pa.Column(INT, pa.Check.ge(UNKNOWN_KEY), nullable=False, unique=True, **kwargs)


def _text(nullable: bool = False) -> pa.Column:
    return pa.Column(STR, nullable=nullable)


def _count() -> pa.Column:
    return pa.Column(INT, pa.Check.ge(0), nullable=False)


def _unique_rows(*columns: str) -> pa.Check:
    return pa.Check(
        lambda df: ~df.duplicated(list(columns), keep=False),
        name=f"unique ({', '.join(columns)})",
        error=f"({', '.join(columns)}) repeats",
    )


_SALES_MEASURES = {
    "total_vendas": _count(),
    "receita": pa.Column(SUM, nullable=False),
    "valor_medio": pa.Column(AVERAGE, nullable=True),
    "lucro": pa.Column(SUM, nullable=False),
    "margem": pa.Column(RATIO, nullable=True),
}

SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "dim_date": pa.DataFrameSchema(
        {
            "date_key": pa.Column(INT, pa.Check.in_range(1000_01_01, 9999_12_31), nullable=False, unique=True),
            "date": pa.Column(DATE, nullable=False, unique=True),
            "year": pa.Column(INT, pa.Check.in_range(1000, 9999)),
            "quarter": pa.Column(INT, pa.Check.in_range(1, 4)),
            "month": pa.Column(INT, pa.Check.in_range(1, 12)),
            "month_name_pt": _text(),
            "month_name_en": _text(),
            "day": pa.Column(INT, pa.Check.in_range(1, 31)),
            "day_of_year": pa.Column(INT, pa.Check.in_range(1, 366)),
            "weekday": pa.Column(INT, pa.Check.in_range(1, 7)),
            "weekday_name_pt": _text(),
            "weekday_name_en": _text(),
            "iso_year": pa.Column(INT, pa.Check.in_range(1000, 9999)),
            "iso_week": pa.Column(INT, pa.Check.in_range(1, 53)),
            "is_weekend": pa.Column(BOOL),
            "is_holiday": pa.Column(BOOL),
            "is_optional_holiday": pa.Column(BOOL),
            "holiday_name": _text(nullable=True),
            "is_business_day": pa.Column(BOOL),
        },
        checks=[
            pa.Check(
                lambda df: df["date_key"] == df["year"] * 10_000 + df["month"] * 100 + df["day"],
                name="date_key is yyyymmdd",
            )
        ],
        strict=True,
        ordered=True,
    ),
    "dim_category": pa.DataFrameSchema(
        {"category_key": _key(), "categoria_id": _key(), "categoria": _text()},
        strict=True,
        ordered=True,
    ),
    "dim_customer": pa.DataFrameSchema(
        {
            "customer_key": _key(),
            "cliente_id": _key(),
            "nome": _text(),
            "email": _text(nullable=True),
            "cidade": _text(nullable=True),
            "uf": pa.Column(STR, pa.Check.str_length(2, 2), nullable=True),
        },
        strict=True,
        ordered=True,
    ),
    "dim_product": pa.DataFrameSchema(
        {
            "product_key": _key(),
            "produto_id": pa.Column(INT, pa.Check.ge(UNKNOWN_KEY), nullable=False),
            "nome": _text(),
            "categoria_id": pa.Column(INT, pa.Check.ge(UNKNOWN_KEY), nullable=False),
            "categoria": _text(),
            "preco": pa.Column(MONEY, pa.Check.ge(ZERO), nullable=True),
            "custo": pa.Column(MONEY, pa.Check.ge(ZERO), nullable=True),
            "valid_from": pa.Column(TIMESTAMP, nullable=False),
            "valid_to": pa.Column(TIMESTAMP, nullable=False),
            "is_current": pa.Column(BOOL, nullable=False),
        },
        checks=[
            pa.Check(lambda df: df["valid_from"] < df["valid_to"], name="valid_from < valid_to"),
            _unique_rows("produto_id", "valid_from"),
            pa.Check(
                lambda df: df.groupby("produto_id")["is_current"].transform("sum") == 1,
                name="one current version per produto_id",
            ),
            pa.Check(
                lambda df: (df["product_key"] == UNKNOWN_KEY) | (df["preco"].notna() & df["custo"].notna()),
                name="preco and custo known except for the Unknown member",
            ),
        ],
        strict=True,
        ordered=True,
    ),
    "fact_sales": pa.DataFrameSchema(
        {
            "order_id": pa.Column(INT, nullable=False, unique=True),
            "date_key": pa.Column(
                INT,
                pa.Check(
                    lambda s: (s == UNKNOWN_KEY) | s.between(1000_01_01, 9999_12_31),
                    name="-1 or yyyymmdd",
                ),
                nullable=False,
            ),
            "product_key": pa.Column(INT, pa.Check.ge(UNKNOWN_KEY), nullable=False),
            "customer_key": pa.Column(INT, pa.Check.ge(UNKNOWN_KEY), nullable=False),
            "category_key": pa.Column(INT, pa.Check.ge(UNKNOWN_KEY), nullable=False),
            "quantidade": pa.Column(INT, pa.Check.ge(0), nullable=False),
            "total": pa.Column(MONEY, pa.Check.ge(ZERO), nullable=False),
            "custo": pa.Column(MONEY, pa.Check.ge(ZERO), nullable=False),
            "lucro": pa.Column(PROFIT, nullable=False),
        },
        checks=[pa.Check(lambda df: df["lucro"] == df["total"] - df["custo"], name="lucro == total - custo")],
        strict=True,
        ordered=True,
    ),
    "sales_by_category": pa.DataFrameSchema(
        {"categoria_id": _key(), "categoria": _text(), **_SALES_MEASURES},
        # atualizado_em (computed_at) may follow
    ),
    "sales_by_product": pa.DataFrameSchema(
        # produto / categoria_id / categoria are present when products were given
        {"produto_id": _key(), "quantidade": _count(), **_SALES_MEASURES},
    ),
    "sales_by_period": pa.DataFrameSchema(
        {
            "periodo": pa.Column(DATE, nullable=False, unique=True),
            "quantidade": _count(),
            **_SALES_MEASURES,
        },
        strict=True,
    ),
    "customer_metrics": pa.DataFrameSchema(
        {
            "cliente_id": _key(),
            "primeira_compra": pa.Column(nullable=False),
            "ultima_compra": pa.Column(nullable=False),
            "total_vendas": pa.Column(INT, pa.Check.ge(1), nullable=False),
            "receita": pa.Column(SUM, nullable=False),
            "ticket_medio": pa.Column(AVERAGE, nullable=False),
            "recencia_dias": pa.Column(INT, pa.Check.ge(0), nullable=False),
            "r_score": pa.Column(INT, pa.Check.in_range(1, 5), nullable=False),
            "f_score": pa.Column(INT, pa.Check.in_range(1, 5), nullable=False),
            "m_score": pa.Column(INT, pa.Check.in_range(1, 5), nullable=False),
        },
        checks=[pa.Check(lambda df: df["primeira_compra"] <= df["ultima_compra"], name="primeira <= ultima")],
        strict=True,
        ordered=True,
    ),
}
SCHEMAS["top_products"] = SCHEMAS["sales_by_product"].add_columns(
    {"rank": pa.Column(INT, pa.Check.ge(1), nullable=False, unique=True)}
)


def validate(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Check ``frame`` against the schema of ``table``; return it unchanged when it passes.

    Args:
        table: a name in :data:`SCHEMAS` (``dim_date``, ``fact_sales``, ``sales_by_category``...).
        frame: the transform's output.

    Returns:
        ``frame`` itself.

    Raises:
        SchemaViolation: the first failing column (or row-level check) with
            up to 10 failing values; ``n_failures`` counts them all.
        KeyError: ``table`` has no schema.

    Example:
        >>> validate("dim_category", pd.DataFrame({"category_key": [1, 1],
        ...     "categoria_id": [1, 2], "categoria": ["a", "b"]}))
        Traceback (most recent call last):
        ...
        transforms.exceptions.SchemaViolation: dim_category.category_key fails 'field_uniqueness' for 2 value(s): 1, 1
    """
    if table not in SCHEMAS:
        raise KeyError(f"no schema for {table!r}; known tables: {', '.join(sorted(SCHEMAS))}")
    try:
        SCHEMAS[table].validate(frame, lazy=True)
    except SchemaErrors as errors:
        raise _violation(table, errors.failure_cases) from errors
    except SchemaError as error:  # raised instead of SchemaErrors by some pandera checks
        cases = error.failure_cases if isinstance(error.failure_cases, pd.DataFrame) else None
        if cases is None or "failure_case" not in cases:
            raise SchemaViolation.for_values(table, None, str(error), [], n_failures=1) from error
        cases = cases.assign(column=getattr(error.schema, "name", None), check=str(error.check))
        raise _violation(table, cases) from error
    return frame


def _violation(table: str, cases: pd.DataFrame) -> SchemaViolation:
    """The first failing (column, check) of a pandera report as a SchemaViolation."""
    first = cases.iloc[0]
    column = first["column"] if isinstance(first["column"], str) and first["column"] != table else None
    check = str(first["check"])
    same = cases[(cases["column"] == first["column"]) & (cases["check"] == first["check"])]
    values = same["failure_case"].tolist()
    return SchemaViolation.for_values(table, column, check, values, n_failures=len(same))


def check_references(fact_sales: pd.DataFrame, dimensions: Mapping[str, pd.DataFrame]) -> None:
    """Verify that every key of ``fact_sales`` exists in its dimension.

    Args:
        fact_sales: output of :func:`transforms.star.fact_sales`.
        dimensions: ``{"dim_date": ..., "dim_product": ..., "dim_customer": ...,
            "dim_category": ...}``; a missing dimension is not checked.

    Raises:
        SchemaViolation: ``table="fact_sales"``, the key ``column``, and the
            distinct missing key values.

    Example:
        >>> check_references(fact, {"dim_product": products})  # doctest: +SKIP
    """
    for column, (dimension, key) in FACT_REFERENCES.items():
        if dimension not in dimensions:
            continue
        keys = fact_sales[column]
        present = keys.isin(dimensions[dimension][key])
        if not present.all():
            missing = pd.unique(keys[~present])
            raise SchemaViolation.for_values(
                "fact_sales",
                column,
                f"exists in {dimension}.{key}",
                sorted(missing.tolist()),
                n_failures=len(missing),
            )


def validate_star(
    dim_date: pd.DataFrame,
    dim_category: pd.DataFrame,
    dim_product: pd.DataFrame,
    dim_customer: pd.DataFrame,
    fact_sales: pd.DataFrame,
) -> None:
    """Validate the four dimensions and the fact, then the fact's references.

    Raises:
        SchemaViolation: the first table, column and values at fault.

    Example:
        >>> validate_star(dd, dk, dp, dc, fact)  # doctest: +SKIP
    """
    tables = {
        "dim_date": dim_date,
        "dim_category": dim_category,
        "dim_product": dim_product,
        "dim_customer": dim_customer,
        "fact_sales": fact_sales,
    }
    for name, frame in tables.items():
        validate(name, frame)
    check_references(fact_sales, tables)


# The column lists the star module promises are the ones the schemas check.
assert list(SCHEMAS["dim_date"].columns) == DIM_DATE_COLUMNS
assert list(SCHEMAS["dim_category"].columns) == DIM_CATEGORY_COLUMNS
assert list(SCHEMAS["dim_customer"].columns) == DIM_CUSTOMER_COLUMNS
assert list(SCHEMAS["dim_product"].columns) == DIM_PRODUCT_COLUMNS
assert list(SCHEMAS["fact_sales"].columns) == FACT_SALES_COLUMNS
