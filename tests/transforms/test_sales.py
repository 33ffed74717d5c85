"""Sales aggregates: exact expected frames, half-even rounding, chunk invariance."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from pandas.testing import assert_frame_equal

from tests.transforms.frames import (
    AVERAGE,
    RATIO,
    SUM,
    categories,
    chunkings,
    dates,
    money,
    orders,
    products,
    random_orders,
    stamps,
)
from transforms.exceptions import MissingColumnsError, MoneyTypeError, TransformError
from transforms.sales import (
    customer_metrics,
    growth,
    quintile_score,
    sales_by_category,
    sales_by_period,
    sales_by_product,
    top_products,
)

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_sales_by_category_groups_orders_by_their_products_category():
    result = sales_by_category(orders(), products(), categories())
    expected = pd.DataFrame(
        {
            "categoria_id": [-1, 1, 2],
            "categoria": pd.array(["Unknown", "Livros", "Jogos"], dtype="str"),
            "total_vendas": [1, 3, 1],
            "receita": money("7.00", "45.00", "100.00", dtype=SUM),
            "valor_medio": money("7.0000", "15.0000", "100.0000", dtype=AVERAGE),
            "lucro": money("6.00", "18.50", "40.00", dtype=SUM),
            "margem": money("0.857143", "0.411111", "0.400000", dtype=RATIO),
        }
    )
    assert_frame_equal(result, expected)


def test_sales_by_category_uses_the_orders_own_category_columns_when_present():
    joined = orders().assign(categoria_id=[2, 2, 1, 1, 1], categoria=["Jogos", "Jogos", "Livros", "Livros", "Livros"])
    result = sales_by_category(joined)
    assert result["categoria_id"].tolist() == [1, 2]
    assert result["categoria"].tolist() == ["Livros", "Jogos"]
    assert result["receita"].tolist() == [Decimal("42.00"), Decimal("110.00")]


def _tiny_orders(rows: list[tuple[int, str, str]]) -> pd.DataFrame:
    """(categoria_id, total, custo) rows."""
    return pd.DataFrame(
        {
            "id": np.arange(1, len(rows) + 1),
            "produto_id": 1,
            "quantidade": 1,
            "categoria_id": [r[0] for r in rows],
            "categoria": [f"c{r[0]}" for r in rows],
            "total": money(*[r[1] for r in rows]),
            "custo": money(*[r[2] for r in rows]),
        }
    )


def test_averages_and_margins_round_half_even_from_exact_totals():
    rows = (
        [(1, "0.01", "0.00")]
        + [(1, "0.00", "0.00")] * 7  # 0.01 / 8 = 0.00125 -> 0.0012
        + [(2, "0.03", "0.00")]
        + [(2, "0.00", "0.00")] * 7  # 0.03 / 8 = 0.00375 -> 0.0038
        + [(3, "1.28", "1.27")]  # margin 0.01 / 1.28 = 0.0078125 -> 0.007812
        + [(4, "1.28", "1.29")]  # margin -0.0078125 -> -0.007812
        + [(5, "0.00", "0.00")]  # no revenue: margin null
    )
    result = sales_by_category(_tiny_orders(rows))
    assert result["valor_medio"].tolist() == [
        Decimal("0.0012"), Decimal("0.0038"), Decimal("1.2800"), Decimal("1.2800"), Decimal("0.0000"),
    ]  # fmt: skip
    assert result["margem"].tolist()[:4] == [
        Decimal("1.000000"), Decimal("1.000000"), Decimal("0.007812"), Decimal("-0.007812"),
    ]  # fmt: skip
    assert result["margem"].isna().tolist() == [False, False, False, False, True]


def test_sales_by_category_fits_the_warehouse_model():
    from dw_analytics.warehouse.models import SalesByCategory

    stamp = pd.Timestamp("2025-01-02 03:00", tz="America/Sao_Paulo")
    result = sales_by_category(orders(), products(), categories(), computed_at=stamp)
    fields = {f.name: f for f in SalesByCategory._meta.get_fields() if f.name != "id"}
    assert list(result.columns) == [f for f in fields if f in result.columns]
    assert set(result.columns) == set(fields)
    for column in ("receita", "valor_medio", "lucro", "margem"):
        assert result[column].dtype.pyarrow_dtype.scale == fields[column].decimal_places
    assert (result["atualizado_em"] == stamp).all()


def test_sales_by_product_adds_current_names_and_unknown_products():
    result = sales_by_product(orders(), products(), categories())
    expected = pd.DataFrame(
        {
            "produto_id": [10, 11, 12, 77],
            "produto": pd.array(["Atlas", "Xadrez", "Gibi", "Unknown"], dtype="str"),
            "categoria_id": [1, 2, 1, -1],
            "categoria": pd.array(["Livros", "Jogos", "Livros", "Unknown"], dtype="str"),
            "quantidade": [4, 2, 1, 1],
            "total_vendas": [2, 1, 1, 1],
            "receita": money("40.00", "100.00", "5.00", "7.00", dtype=SUM),
            "valor_medio": money("20.0000", "100.0000", "5.0000", "7.0000", dtype=AVERAGE),
            "lucro": money("16.00", "40.00", "2.50", "6.00", dtype=SUM),
            "margem": money("0.400000", "0.400000", "0.500000", "0.857143", dtype=RATIO),
        }
    )
    assert_frame_equal(result, expected)


def test_top_products_ranks_by_the_measure_and_breaks_ties_by_id():
    by_product = sales_by_product(orders(), products())
    top = top_products(by_product, n=3, by="margem")
    assert top["rank"].tolist() == [1, 2, 3]
    assert top["produto_id"].tolist() == [77, 12, 10]  # 10 and 11 tie at 0.400000: lower id first
    assert top_products(by_product, n=2)["produto_id"].tolist() == [11, 10]
    with pytest.raises(TransformError):
        top_products(by_product, n=-1)


def test_sales_by_period_month_fills_gaps_with_zeros():
    result = sales_by_period(orders(), "month", end="2025-02-10")
    assert len(result) == 12  # March 2024 .. February 2025
    head = result.iloc[[0, 1, 2, 9, 10, 11]].reset_index(drop=True)
    expected = pd.DataFrame(
        {
            "periodo": dates("2024-03-01", "2024-04-01", "2024-05-01", "2024-12-01", "2025-01-01", "2025-02-01"),
            "total_vendas": [2, 1, 0, 1, 1, 0],
            "quantidade": [3, 3, 0, 1, 1, 0],
            "receita": money("110.00", "30.00", "0.00", "5.00", "7.00", "0.00", dtype=SUM),
            "valor_medio": money("55.0000", "30.0000", None, "5.0000", "7.0000", None, dtype=AVERAGE),
            "lucro": money("44.00", "12.00", "0.00", "2.50", "6.00", "0.00", dtype=SUM),
            "margem": money("0.400000", "0.400000", None, "0.500000", "0.857143", None, dtype=RATIO),
        }
    )
    assert_frame_equal(head, expected)


@pytest.mark.parametrize(
    ("freq", "periods"),
    [
        ("day", ["2024-03-30", "2024-03-31", "2024-04-01", "2024-04-02"]),
        ("week", ["2024-03-25", "2024-04-01"]),  # ISO weeks start on Monday
        ("quarter", ["2024-01-01", "2024-04-01"]),
    ],
)
def test_sales_by_period_takes_dates_in_sao_paulo(freq, periods):
    # 31 March 23:30 local is 1 April in UTC but belongs to 31 March / the March week / Q1.
    some = orders().iloc[[1, 2]]
    result = sales_by_period(some, freq, start="2024-03-30", end="2024-04-02")
    assert result["periodo"].astype(str).tolist() == periods
    assert result["total_vendas"].sum() == 2
    if freq == "day":
        assert result["total_vendas"].tolist() == [0, 1, 1, 0]


def test_growth_compares_with_previous_period_and_year():
    monthly = pd.DataFrame(
        {
            "periodo": dates("2024-01-01", "2024-02-01", "2024-03-01", "2025-01-01", "2025-02-01"),
            "receita": money("100.00", "0.00", "30.00", "150.00", "0.01", dtype=SUM),
        }
    )
    result = growth(monthly, freq="month")
    expected = pd.DataFrame(
        {
            "periodo": monthly["periodo"],
            "receita": monthly["receita"],
            "receita_periodo_anterior": money(None, "100.00", "0.00", None, "150.00", dtype=SUM),
            "crescimento_periodo": money(None, "-1.000000", None, None, "-0.999933", dtype=RATIO),
            "receita_ano_anterior": money(None, None, None, "100.00", "0.00", dtype=SUM),
            "crescimento_anual": money(None, None, None, "0.500000", None, dtype=RATIO),
        }
    )
    assert_frame_equal(result, expected)


def test_growth_of_a_count_keeps_integers():
    weekly = pd.DataFrame({"periodo": dates("2024-01-01", "2024-01-08", "2024-12-30"), "total_vendas": [4, 5, 6]})
    result = growth(weekly, freq="week", column="total_vendas")
    assert result["total_vendas_periodo_anterior"].tolist() == [pd.NA, 4, pd.NA]
    assert result["crescimento_periodo"].tolist()[1] == Decimal("0.250000")
    assert result["total_vendas_ano_anterior"].tolist() == [pd.NA, pd.NA, 4]  # 52 weeks before
    assert result["crescimento_anual"].tolist()[2] == Decimal("0.500000")


def test_customer_metrics_as_of_a_date():
    result = customer_metrics(orders(), as_of="2024-12-31")
    expected = pd.DataFrame(
        {
            "cliente_id": [100, 101, 999],
            "primeira_compra": stamps("2024-03-01 10:00", "2024-03-31 23:30", "2024-12-31 22:00"),
            "ultima_compra": stamps("2024-04-01 00:10", "2024-03-31 23:30", "2024-12-31 22:00"),
            "total_vendas": [2, 1, 1],
            "receita": money("40.00", "100.00", "5.00", dtype=SUM),
            "ticket_medio": money("20.0000", "100.0000", "5.0000", dtype=AVERAGE),
            "recencia_dias": [274, 275, 0],
            "r_score": [2, 1, 4],
            "f_score": [4, 1, 1],
            "m_score": [2, 4, 1],
        }
    )
    assert_frame_equal(result, expected)  # order 5 (1 Jan 2025) is after as_of


def test_quintile_scores_give_ties_the_same_score():
    assert quintile_score(np.arange(10)).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert quintile_score(np.array([3, 3, 3])).tolist() == [1, 1, 1]
    assert quintile_score(np.array([], np.int64)).tolist() == []


def test_float_money_is_refused():
    floats = orders().assign(total=[10.0, 100.0, 30.0, 5.0, 7.0])
    with pytest.raises(MoneyTypeError, match="orders.total"):
        sales_by_category(floats, products(), categories())


def test_missing_columns_are_named():
    with pytest.raises(MissingColumnsError, match="categoria_id"):
        sales_by_category(orders())
    with pytest.raises(MissingColumnsError, match="criado_em"):
        sales_by_period(orders().drop(columns="criado_em"))


def test_inputs_are_not_mutated():
    inputs = [orders(), products(), categories()]
    copies = [frame.copy(deep=True) for frame in inputs]
    sales_by_category(*inputs)
    sales_by_product(*inputs)
    sales_by_period(inputs[0], "week")
    customer_metrics(inputs[0], as_of="2025-01-01")
    growth(sales_by_period(inputs[0]), freq="month")
    for frame, copy in zip(inputs, copies, strict=True):
        assert_frame_equal(frame, copy)


def _reference_by_category(frame: pd.DataFrame) -> dict[int, tuple]:
    """Plain Python Decimal arithmetic, group by group: an independent oracle."""
    category_of = {10: 1, 11: 2, 12: 1}
    groups: dict[int, list] = {}
    for produto, total, custo in zip(frame["produto_id"], frame["total"], frame["custo"], strict=True):
        groups.setdefault(category_of.get(produto, -1), []).append((total, custo))
    reference = {}
    with localcontext() as ctx:
        ctx.prec = 60
        for key, rows in groups.items():
            receita = sum((t for t, _ in rows), Decimal("0.00"))
            lucro = sum((t - c for t, c in rows), Decimal("0.00"))
            media = (receita / len(rows)).quantize(Decimal("0.0001"), ROUND_HALF_EVEN)
            margem = (lucro / receita).quantize(Decimal("0.000001"), ROUND_HALF_EVEN) if receita else None
            reference[key] = (len(rows), receita, media, lucro, margem)
    return reference


@FAST
@given(chunkings(random_orders()))
def test_sales_by_category_is_exact_and_independent_of_chunking(case):
    whole, chunks = case
    result = sales_by_category(chunks, products(), categories())
    assert_frame_equal(result, sales_by_category(whole, products(), categories()))
    got = {
        row.categoria_id: (
            row.total_vendas,
            row.receita,
            row.valor_medio,
            row.lucro,
            None if pd.isna(row.margem) else row.margem,
        )
        for row in result.itertuples()
    }
    assert got == _reference_by_category(whole)


@FAST
@given(chunkings(random_orders()))
def test_period_and_customer_aggregates_are_independent_of_chunking(case):
    whole, chunks = case
    assert_frame_equal(sales_by_period(chunks, "week"), sales_by_period(whole, "week"))
    assert_frame_equal(sales_by_product(chunks, products()), sales_by_product(whole, products()))
    assert_frame_equal(customer_metrics(chunks, "2024-06-30"), customer_metrics(whole, "2024-06-30"))
