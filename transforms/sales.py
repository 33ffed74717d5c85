"""Sales aggregates: by category, by product, by period, top products, customers, growth.

Every function takes the orders as one DataFrame or as an iterable of chunks
(a chunked extract); the group-by runs through :func:`transforms.rollup.rollup`,
whose partial aggregates combine exactly, so the result does not depend on
the chunking.

Exact numbers (what the warehouse stores):

* money sums (``receita``, ``lucro``) are ``decimal128(38, 2)``: exact to the
  cent, wide enough that no total overflows;
* averages (``valor_medio``, ``ticket_medio``) are ``decimal128(38, 4)``: the
  exact quotient of the exact sum by the count, rounded **half-even** to 4
  places;
* ratios (``margem`` = lucro / receita, growth rates) are ``decimal128(38, 6)``
  fractions (0.25 = 25 %), computed from the exact totals and rounded
  half-even to 6 places -- decimals, not floats, so a ratio recomputed by the
  database from the same totals agrees to the last digit; null when the
  denominator is 0;
* counts are int64.

All divisions are integer long divisions on cents (see
``transforms._common.divide_half_even``): no float touches a money value.
Dates and periods are taken in America/Sao_Paulo. An order whose product or
category is unknown is grouped under ``categoria_id`` -1 ("Unknown"), never
dropped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from transforms._common import (
    SUM_PRECISION,
    US_PER_DAY,
    IdLookup,
    as_frames,
    decimal_column,
    divide_half_even,
    local_wall_us,
    money_cents,
    require_columns,
    unscaled_int,
)
from transforms.exceptions import MissingColumnsError, MoneyTypeError, TransformError
from transforms.rollup import rollup

Frequency = Literal["day", "week", "month", "quarter"]
FREQUENCIES = ("day", "week", "month", "quarter")
UNKNOWN_ID = -1
UNKNOWN_NAME = "Unknown"
#: decimal places of averages and of ratios
AVERAGE_SCALE = 4
RATIO_SCALE = 6

SALES_MEASURES = ["total_vendas", "receita", "valor_medio", "lucro", "margem"]
_EMPTY_ORDERS = pd.DataFrame(
    {
        "id": np.array([], np.int64),
        "produto_id": np.array([], np.int64),
        "quantidade": np.array([], np.int64),
        "total": pd.array([], dtype=pd.ArrowDtype(pa.decimal128(14, 2))),
        "custo": pd.array([], dtype=pd.ArrowDtype(pa.decimal128(14, 2))),
    }
)
_AGGS = {
    "total_vendas": ("id", "size"),
    "quantidade": ("quantidade", "sum"),
    "receita": ("total_cents", "sum"),
    "n_total": ("total_cents", "count"),
    "lucro": ("lucro_cents", "sum"),
}
#: money is summed as int64 cents (exact, and much faster than decimal128 sums) while
#: the sum of |cents| over all rows seen provably stays below this bound
_CENTS_BOUND = 2**63 - 1


# -- sales_by_category / sales_by_product ---------------------------------------
def sales_by_category(
    orders: pd.DataFrame | Iterable[pd.DataFrame],
    products: pd.DataFrame | None = None,
    categories: pd.DataFrame | None = None,
    *,
    computed_at: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Orders aggregated by product category; fits ``warehouse.SalesByCategory``.

    The category of an order is its own ``categoria_id`` column when present
    (an extract joined through the product), else its product's current
    ``categoria_id`` in ``products``. The name comes from the orders'
    ``categoria`` column, else from ``categories``. Orders of an unknown
    product or category fall under ``categoria_id`` -1, "Unknown".

    Args:
        orders: ``id``, ``produto_id``, ``quantidade``, ``total``, ``custo``
            (decimal128), optionally ``categoria_id`` / ``categoria``; one frame
            or an iterable of chunks.
        products: ``id``, ``categoria_id``; needed when orders lack ``categoria_id``.
        categories: ``id``, ``nome``; needed when orders lack ``categoria``.
        computed_at: when given, added as the ``atualizado_em`` column.

    Returns:
        ``categoria_id`` int64, ``categoria`` str, ``total_vendas`` int64 (orders),
        ``receita`` decimal128(38, 2) (sum of total), ``valor_medio``
        decimal128(38, 4) (receita / orders, half-even), ``lucro``
        decimal128(38, 2) (sum of total - custo), ``margem`` decimal128(38, 6)
        (lucro / receita, half-even; null when receita is 0), then
        ``atualizado_em`` if asked; one row per category, sorted by ``categoria_id``.

    Example:
        >>> from decimal import Decimal
        >>> money = pd.ArrowDtype(pa.decimal128(14, 2))
        >>> orders = pd.DataFrame({"id": [1, 2], "produto_id": [7, 7], "quantidade": [1, 2],
        ...     "categoria_id": [3, 3], "categoria": ["Livros", "Livros"],
        ...     "total": pd.Series([Decimal("10.00"), Decimal("5.01")], dtype=money),
        ...     "custo": pd.Series([Decimal("6.00"), Decimal("3.00")], dtype=money)})
        >>> row = sales_by_category(orders).iloc[0]
        >>> row["categoria"], row["total_vendas"], row["valor_medio"], row["margem"]
        ('Livros', np.int64(2), Decimal('7.5050'), Decimal('0.400400'))
    """
    frames = as_frames(orders)
    first = next(frames, None)
    if first is None:  # no chunk at all: an empty table with the usual columns
        first = _EMPTY_ORDERS.assign(categoria_id=np.array([], np.int64), categoria=pd.array([], dtype="str"))
    frames = _chain(first, frames)
    has_name = "categoria" in first.columns
    if "categoria_id" not in first.columns and products is None:
        if not has_name:
            raise MissingColumnsError(
                "sales_by_category needs the orders' categoria_id / categoria columns or the products frame",
                table="orders",
                columns=["categoria_id"],
            )
        keys = ["categoria"]
    else:
        keys = ["categoria_id", "categoria"] if has_name else ["categoria_id"]
    category_of = None if "categoria_id" in first.columns else _category_lookup(products)
    guard = _CentsGuard()
    slim = (_slim(chunk, keys, guard, category_of=category_of) for chunk in frames)
    result = sales_measures(rollup(slim, by=keys, **_AGGS), keys)
    if "categoria" not in keys:
        result.insert(1, "categoria", _names(result["categoria_id"], categories, "categories"))
    result = result[[*dict.fromkeys(["categoria_id", "categoria", *keys]), *SALES_MEASURES]]
    if computed_at is not None:
        result["atualizado_em"] = pd.Timestamp(computed_at)
    return result


def sales_by_product(
    orders: pd.DataFrame | Iterable[pd.DataFrame],
    products: pd.DataFrame | None = None,
    categories: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Orders aggregated by product, with the product's current name and category.

    Args:
        orders: ``id``, ``produto_id``, ``quantidade``, ``total``, ``custo``;
            one frame or an iterable of chunks.
        products: ``id``, ``nome``, ``categoria_id``; when given, adds
            ``produto``, ``categoria_id`` (and ``categoria`` with ``categories``).
        categories: ``id``, ``nome``.

    Returns:
        ``produto_id`` int64, [``produto`` str, ``categoria_id`` int64,
        ``categoria`` str,] ``quantidade`` int64 (units), then the measures of
        :func:`sales_by_category`; sorted by ``produto_id``. Unknown products
        read "Unknown" with ``categoria_id`` -1.

    Example:
        >>> sales_by_product(orders, products, categories)  # doctest: +SKIP
    """
    guard = _CentsGuard()
    slim = (_slim(chunk, ["produto_id"], guard) for chunk in as_frames(orders))
    result = sales_measures(rollup(slim, by="produto_id", **_AGGS), ["produto_id"])
    columns = ["produto_id"]
    if products is not None:
        require_columns(products, "products", ["id", "nome", "categoria_id"])
        position = IdLookup(products["id"].to_numpy(np.int64)).positions(result["produto_id"].to_numpy(np.int64))
        names = np.append(products["nome"].to_numpy(object), UNKNOWN_NAME)
        category_ids = np.append(products["categoria_id"].to_numpy(np.int64), UNKNOWN_ID)
        result["produto"] = pd.array(names[position], dtype="str")  # position -1 is the appended Unknown
        result["categoria_id"] = category_ids[position]
        columns += ["produto", "categoria_id"]
        if categories is not None:
            result["categoria"] = _names(result["categoria_id"], categories, "categories")
            columns.append("categoria")
    return result[[*columns, "quantidade", *SALES_MEASURES]]


def top_products(sales_by_product: pd.DataFrame, n: int = 10, by: str = "receita") -> pd.DataFrame:
    """The ``n`` best products of a :func:`sales_by_product` frame by ``by``, with their rank.

    Ties are broken by ``produto_id`` (ascending) so the answer is stable.

    Args:
        sales_by_product: output of :func:`sales_by_product`.
        n: how many products.
        by: the measure to rank on (``receita``, ``lucro``, ``quantidade``,
            ``total_vendas``, ``margem``...); nulls rank last.

    Returns:
        ``rank`` int64 (1 = best) then the input columns, at most ``n`` rows.

    Example:
        >>> top_products(sales_by_product(orders, products), n=3, by="lucro")  # doctest: +SKIP
    """
    require_columns(sales_by_product, "sales_by_product", ["produto_id", by])
    if n < 0:
        raise TransformError(f"top_products: n must be >= 0, got {n}")
    ordered = sales_by_product.sort_values(
        [by, "produto_id"], ascending=[False, True], na_position="last", kind="stable"
    )
    top = ordered.head(n).reset_index(drop=True)
    top.insert(0, "rank", np.arange(1, len(top) + 1, dtype=np.int64))
    return top


# -- sales_by_period / growth ----------------------------------------------------
def sales_by_period(
    orders: pd.DataFrame | Iterable[pd.DataFrame],
    freq: Frequency = "month",
    *,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
) -> pd.DataFrame:
    """Orders aggregated by calendar period (America/Sao_Paulo), gaps filled with zeros.

    Periods: ``day``; ``week`` (ISO, starting Monday); ``month``;
    ``quarter``. Every period from the first to the last (or from ``start``
    to ``end``) has a row; a period without orders has counts and sums 0 and
    null ``valor_medio`` / ``margem``.

    Args:
        orders: ``id``, ``quantidade``, ``total``, ``custo``, ``criado_em``.
        freq: ``"day"``, ``"week"``, ``"month"`` or ``"quarter"``.
        start, end: widen (or cut) the range of periods reported.

    Returns:
        ``periodo`` date32 (first day of the period), ``total_vendas``,
        ``quantidade`` int64, ``receita``, ``valor_medio``, ``lucro``,
        ``margem`` (types as in :func:`sales_by_category`), sorted by ``periodo``.

    Example:
        >>> sales_by_period(orders, "week")  # doctest: +SKIP
    """
    if freq not in FREQUENCIES:
        raise TransformError(f"sales_by_period: freq must be one of {FREQUENCIES}, got {freq!r}")

    guard = _CentsGuard()

    def with_period(chunk: pd.DataFrame) -> pd.DataFrame:
        require_columns(chunk, "orders", ["criado_em"])
        days = np.floor_divide(local_wall_us(chunk["criado_em"]), US_PER_DAY)
        return _slim(chunk, [], guard, extra={"periodo": _period_start(days, freq)})

    totals = sales_measures(rollup((with_period(c) for c in as_frames(orders)), by="periodo", **_AGGS), ["periodo"])
    periods = totals["periodo"].to_numpy(np.int64)
    first = (
        _period_start(np.array([_epoch_day(start)]), freq)[0]
        if start is not None
        else (periods.min() if len(periods) else None)
    )
    last = (
        _period_start(np.array([_epoch_day(end)]), freq)[0]
        if end is not None
        else (periods.max() if len(periods) else None)
    )
    every = _period_range(first, last, freq) if first is not None else np.array([], np.int64)
    filled = _zero_filled(totals, every)
    return filled[["periodo", "total_vendas", "quantidade", *SALES_MEASURES[1:]]]


def growth(
    sales_by_period: pd.DataFrame,
    *,
    freq: Frequency,
    column: str = "receita",
) -> pd.DataFrame:
    """Period-over-period and year-over-year growth of one measure of :func:`sales_by_period`.

    The previous period is the one just before (day, 7 days, 1 month, 3
    months); the year-ago period is the same calendar day / month / quarter a
    year before, and 52 weeks before for weekly periods (same weekday). A
    growth rate is ``(value - base) / base`` as a decimal128(38, 6) fraction,
    half-even, computed from the exact values; null when the base is missing
    or 0.

    Args:
        sales_by_period: output of :func:`sales_by_period` with the same ``freq``.
        freq: the frequency it was built with.
        column: the measure (``receita``, ``lucro``, ``total_vendas``, ``quantidade``...).

    Returns:
        ``periodo``, ``<column>``, ``<column>_periodo_anterior``,
        ``crescimento_periodo``, ``<column>_ano_anterior``,
        ``crescimento_anual``; base values have the measure's dtype.

    Example:
        >>> growth(sales_by_period(orders, "month"), freq="month")  # doctest: +SKIP
    """
    if freq not in FREQUENCIES:
        raise TransformError(f"growth: freq must be one of {FREQUENCIES}, got {freq!r}")
    require_columns(sales_by_period, "sales_by_period", ["periodo", column])
    frame = sales_by_period[["periodo", column]].reset_index(drop=True)
    days = pa.array(frame["periodo"]).cast(pa.date32()).cast(pa.int32()).to_numpy(zero_copy_only=False)
    days = days.astype(np.int64)
    index = pd.Index(days)
    values, null = unscaled_int(frame[column], "sales_by_period", column)
    # A missing base is null, so integer measures get the nullable Int64 dtype.
    source = frame[column].astype("Int64") if frame[column].dtype == np.int64 else frame[column]
    result = {"periodo": frame["periodo"], column: frame[column]}
    for suffix, rate, base_days in (
        ("periodo_anterior", "crescimento_periodo", _shift_days(days, freq, 1)),
        ("ano_anterior", "crescimento_anual", _year_ago_days(days, freq)),
    ):
        position = index.get_indexer(base_days)
        found = position >= 0
        base_null = ~found | null[np.maximum(position, 0)]
        base = source.take(np.maximum(position, 0)).reset_index(drop=True)
        result[f"{column}_{suffix}"] = base.where(~base_null) if base_null.any() else base
        base_values = np.where(base_null, 0, values[np.maximum(position, 0)])
        ratio, zero = divide_half_even(values - base_values, base_values, RATIO_SCALE)
        result[rate] = decimal_column(ratio, SUM_PRECISION, RATIO_SCALE, null_mask=zero | base_null | null)
    return pd.DataFrame(result)


# -- customer_metrics --------------------------------------------------------------
def customer_metrics(orders: pd.DataFrame | Iterable[pd.DataFrame], as_of: dt.date | str) -> pd.DataFrame:
    """Per-customer purchase history and RFM scores as of the end of day ``as_of``.

    Only orders placed on or before ``as_of`` (America/Sao_Paulo dates) count.
    Scores are quintiles 1-5 (5 = best: most recent, most frequent, highest
    spend): with ``r`` the ascending rank of the customer's value among the
    ``n`` customers, ties sharing the lowest rank, ``score = 1 + (5 * (r - 1)) // n``.
    Equal values always get equal scores.

    Args:
        orders: ``id``, ``cliente_id``, ``total``, ``criado_em``; frame or chunks.
        as_of: the day the metrics describe.

    Returns:
        ``cliente_id`` int64, ``primeira_compra`` and ``ultima_compra``
        (the order timestamps, in the input's dtype), ``total_vendas`` int64,
        ``receita`` decimal128(38, 2), ``ticket_medio`` decimal128(38, 4)
        (receita / orders, half-even), ``recencia_dias`` int64 (days from the
        last purchase's date to ``as_of``), ``r_score``, ``f_score``,
        ``m_score`` int64; sorted by ``cliente_id``.

    Example:
        >>> customer_metrics(orders, as_of="2024-12-31")  # doctest: +SKIP
    """
    as_of_day = _epoch_day(as_of)
    aggs = {
        "primeira_compra": ("criado_em", "min"),
        "ultima_compra": ("criado_em", "max"),
        "total_vendas": ("id", "size"),
        "receita": ("total_cents", "sum"),
    }
    guard = _CentsGuard()

    def until_as_of(chunk: pd.DataFrame) -> pd.DataFrame:
        require_columns(chunk, "orders", ["id", "cliente_id", "total", "criado_em"])
        day = np.floor_divide(local_wall_us(chunk["criado_em"]), US_PER_DAY)
        keep = day <= as_of_day
        cliente = chunk["cliente_id"]
        return pd.DataFrame(
            {
                "cliente_id": (cliente.fillna(UNKNOWN_ID) if cliente.isna().any() else cliente).to_numpy(np.int64),
                "id": chunk["id"].to_numpy(),
                "total_cents": guard.cents(chunk, "total"),
                "criado_em": chunk["criado_em"].array,
            }
        )[keep]

    result = rollup((until_as_of(c) for c in as_frames(orders)), by="cliente_id", **aggs)
    if len(result) == 0:
        result = _empty_customer_result(orders)
    receita = result["receita"].to_numpy(np.int64)
    count = result["total_vendas"].to_numpy(np.int64)
    ticket, zero = divide_half_even(receita, count, AVERAGE_SCALE - 2)
    last_day = np.floor_divide(local_wall_us(result["ultima_compra"]), US_PER_DAY)
    recency = as_of_day - last_day
    return pd.DataFrame(
        {
            "cliente_id": result["cliente_id"].to_numpy(np.int64),
            "primeira_compra": result["primeira_compra"],
            "ultima_compra": result["ultima_compra"],
            "total_vendas": count,
            "receita": decimal_column(receita, SUM_PRECISION, 2),
            "ticket_medio": decimal_column(ticket, SUM_PRECISION, AVERAGE_SCALE, null_mask=zero),
            "recencia_dias": recency,
            "r_score": quintile_score(-recency),
            "f_score": quintile_score(count),
            "m_score": quintile_score(receita),
        }
    )


def quintile_score(values: np.ndarray) -> np.ndarray:
    """Scores 1-5 by quintile of ``values`` (higher value, higher score; ties share a score).

    Example:
        >>> quintile_score(np.array([10, 20, 30, 40, 50, 50])).tolist()
        [1, 1, 2, 3, 4, 4]
    """
    values = np.asarray(values)
    if len(values) == 0:
        return np.array([], dtype=np.int64)
    rank = pd.Series(values).rank(method="min").to_numpy(np.int64)
    return 1 + (5 * (rank - 1)) // len(values)


# -- helpers -------------------------------------------------------------------------
def _chain(first: pd.DataFrame, rest: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    yield first
    yield from rest


def _category_lookup(products: pd.DataFrame) -> tuple[IdLookup, np.ndarray]:
    require_columns(products, "products", ["id", "categoria_id"])
    return IdLookup(products["id"].to_numpy(np.int64)), products["categoria_id"].to_numpy(np.int64)


class _CentsGuard:
    """Proves that int64 cent sums cannot overflow: the sum of |cents| seen stays below 2**63."""

    def __init__(self) -> None:
        self.bound = 0

    def checked(self, cents: np.ndarray, null: np.ndarray) -> np.ndarray | pd.arrays.IntegerArray:
        if len(cents):
            self.bound += len(cents) * int(np.abs(cents).max())
        if self.bound > _CENTS_BOUND:
            raise TransformError(
                "money totals could exceed int64 cents (about 92 quadrillion BRL); aggregate fewer rows",
                table="orders",
            )
        return pd.arrays.IntegerArray(cents, null) if null.any() else cents

    def cents(self, chunk: pd.DataFrame, column: str) -> np.ndarray | pd.arrays.IntegerArray:
        return self.checked(*money_cents(chunk, column, "orders"))


def _slim(
    chunk: pd.DataFrame,
    keys: list[str],
    guard: _CentsGuard,
    *,
    category_of: tuple[IdLookup, np.ndarray] | None = None,
    extra: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Only the columns the aggregation reads, plus ``lucro``; no data copied for money."""
    require_columns(chunk, "orders", ["id", "quantidade", "total", "custo"])
    columns: dict[str, object] = dict(extra or {})
    for key in keys:
        if key == "categoria_id" and category_of is not None:
            require_columns(chunk, "orders", ["produto_id"])
            lookup, category_ids = category_of
            position = lookup.positions(_ids(chunk["produto_id"]))
            columns[key] = np.append(category_ids, UNKNOWN_ID)[position]  # -1 -> the appended Unknown
        elif key in ("categoria_id", "produto_id"):
            columns[key] = _ids(chunk[key])
        else:
            columns[key] = chunk[key].fillna(UNKNOWN_NAME).array
    total, total_null = money_cents(chunk, "total", "orders")
    custo, custo_null = money_cents(chunk, "custo", "orders")
    columns |= {
        "id": chunk["id"].to_numpy(),
        "quantidade": chunk["quantidade"].to_numpy(np.int64),
        "total_cents": guard.checked(total, total_null),
        "lucro_cents": guard.checked(total - custo, total_null | custo_null),
    }
    return pd.DataFrame(columns)


def _ids(series: pd.Series) -> np.ndarray:
    return (series.fillna(UNKNOWN_ID) if series.isna().any() else series).to_numpy(np.int64)


def sales_measures(totals: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The sales measures from exact sums: averages and margins computed, sums kept.

    Every aggregate of this module ends here, and so can any other source of
    the same sums (monthly partial tables, Dask partitions).

    Args:
        totals: the ``keys`` columns plus ``total_vendas``, ``quantidade``,
            ``receita`` and ``lucro`` (int64 cents, or decimal columns of
            scale 2) and ``n_total`` (orders with a total).
        keys: the grouping columns, kept first.

    Returns:
        ``keys``, ``total_vendas``, ``quantidade``, ``receita``,
        ``valor_medio`` (receita / n_total, 4 places, half-even), ``lucro``,
        ``margem`` (lucro / receita, 6 places, half-even; null when receita is 0).

    Example:
        >>> from decimal import Decimal
        >>> totals = pd.DataFrame({"k": [1], "total_vendas": [3], "quantidade": [4], "n_total": [3],
        ...     "receita": [1000], "lucro": [250]})
        >>> sales_measures(totals, ["k"]).iloc[0, 3:].tolist()
        [Decimal('10.00'), Decimal('3.3333'), Decimal('2.50'), Decimal('0.250000')]
    """
    if len(totals) == 0:
        totals = pd.DataFrame({k: np.array([], np.int64) for k in [*keys, *_AGGS]})
    receita_cents = _cents(totals["receita"])
    lucro_cents = _cents(totals["lucro"])
    receita = decimal_column(receita_cents, SUM_PRECISION, 2)
    lucro = decimal_column(lucro_cents, SUM_PRECISION, 2)
    average, no_orders = divide_half_even(receita_cents, totals["n_total"].to_numpy(np.int64), AVERAGE_SCALE - 2)
    margin, no_revenue = divide_half_even(lucro_cents, receita_cents, RATIO_SCALE)
    return pd.DataFrame(
        {k: totals[k].to_numpy() if k != "categoria" else totals[k].astype("str").array for k in keys}
        | {
            "total_vendas": totals["total_vendas"].to_numpy(np.int64),
            "quantidade": totals["quantidade"].to_numpy(np.int64),
            "receita": receita,
            "valor_medio": decimal_column(average, SUM_PRECISION, AVERAGE_SCALE, null_mask=no_orders),
            "lucro": lucro,
            "margem": decimal_column(margin, SUM_PRECISION, RATIO_SCALE, null_mask=no_revenue),
        }
    )


def _cents(sums: pd.Series) -> np.ndarray:
    if isinstance(sums.dtype, pd.ArrowDtype) and pa.types.is_decimal(sums.dtype.pyarrow_dtype):
        if sums.dtype.pyarrow_dtype.scale != 2:
            raise MoneyTypeError(f"sums must have 2 decimal places, got {sums.dtype}", column=sums.name)
        return unscaled_int(sums, "sales", str(sums.name))[0]
    return sums.to_numpy(np.int64)


def _names(ids: pd.Series, categories: pd.DataFrame | None, table: str) -> pd.arrays.ArrowStringArray:
    if categories is None:
        raise MissingColumnsError(
            "category names need the orders' 'categoria' column or the categories frame",
            table="orders",
            columns=["categoria"],
        )
    require_columns(categories, table, ["id", "nome"])
    names = pd.Series(categories["nome"].to_numpy(object), index=categories["id"].to_numpy(np.int64))
    return pd.array(ids.map(names).fillna(UNKNOWN_NAME).to_numpy(object), dtype="str")


def _epoch_day(day: dt.date | str | pd.Timestamp) -> int:
    return int(np.datetime64(pd.Timestamp(day).date(), "D").astype(np.int64))


def _period_start(days: np.ndarray, freq: str) -> np.ndarray:
    """First day (days since the epoch) of the period containing each day."""
    days = np.asarray(days, dtype=np.int64)
    if freq == "day":
        return days
    first, last = (int(days.min()), int(days.max())) if len(days) else (0, 0)
    if last - first < len(days) // 4:
        # Orders span few distinct days: convert the range once, then gather.
        return _period_start_of_days(np.arange(first, last + 1, dtype=np.int64), freq)[days - first]
    return _period_start_of_days(days, freq)


def _period_start_of_days(days: np.ndarray, freq: str) -> np.ndarray:
    if freq == "week":
        return days - (days + 3) % 7  # 1970-01-01 was a Thursday; weeks start on Monday
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    if freq == "quarter":
        months = months - months % 3
    return months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)


def _period_range(first: int, last: int, freq: str) -> np.ndarray:
    if freq in ("day", "week"):
        return np.arange(first, last + 1, 1 if freq == "day" else 7, dtype=np.int64)
    first_month = np.datetime64(int(first), "D").astype("datetime64[M]")
    last_month = np.datetime64(int(last), "D").astype("datetime64[M]")
    months = np.arange(first_month, last_month + 1, 1 if freq == "month" else 3)
    return months.astype("datetime64[D]").astype(np.int64)


def _zero_filled(totals: pd.DataFrame, every: np.ndarray) -> pd.DataFrame:
    position = pd.Index(totals["periodo"].to_numpy(np.int64)).get_indexer(every)
    found = position >= 0
    take = np.maximum(position, 0)
    out = {"periodo": pd.arrays.ArrowExtensionArray(pa.array(every.astype("datetime64[D]")))}
    for column in ("total_vendas", "quantidade"):
        values = totals[column].to_numpy(np.int64)
        out[column] = np.where(found, values[take] if len(values) else 0, 0)
    for column, scale, zero_fill in (
        ("receita", 2, True),
        ("valor_medio", AVERAGE_SCALE, False),
        ("lucro", 2, True),
        ("margem", RATIO_SCALE, False),
    ):
        units, null = unscaled_int(totals[column], "sales_by_period", column)
        units = np.where(found, units[take] if len(units) else 0, 0)
        null = np.where(found, null[take] if len(null) else True, not zero_fill)
        out[column] = decimal_column(units, SUM_PRECISION, scale, null_mask=null)
    return pd.DataFrame(out)


def _shift_days(days: np.ndarray, freq: str, periods: int) -> np.ndarray:
    """The start day of the period ``periods`` before each period start."""
    if freq == "day":
        return days - periods
    if freq == "week":
        return days - 7 * periods
    months = days.astype("datetime64[D]").astype("datetime64[M]")
    step = periods if freq == "month" else 3 * periods
    return (months - step).astype("datetime64[D]").astype(np.int64)


def _year_ago_days(days: np.ndarray, freq: str) -> np.ndarray:
    if freq == "week":
        return days - 364  # 52 weeks: the same ISO weekday a year before
    if freq in ("month", "quarter"):
        return _shift_days(days, "month", 12)
    # Same calendar day a year before; 29 February has none (-> no base, null growth).
    date = days.astype("datetime64[D]")
    months = date.astype("datetime64[M]")
    day_of_month = (date - months.astype("datetime64[D]")).astype(np.int64)
    target_month = months - 12
    target = target_month.astype("datetime64[D]").astype(np.int64) + day_of_month
    still_same_month = target.astype("datetime64[D]").astype("datetime64[M]") == target_month
    return np.where(still_same_month, target, np.iinfo(np.int64).min)


def _empty_customer_result(orders: object) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cliente_id": np.array([], np.int64),
            "primeira_compra": pd.DatetimeIndex([], dtype="datetime64[us, America/Sao_Paulo]"),
            "ultima_compra": pd.DatetimeIndex([], dtype="datetime64[us, America/Sao_Paulo]"),
            "total_vendas": np.array([], np.int64),
            "receita": np.array([], np.int64),
        }
    )
