"""Star schema: dimensions with Unknown members, type-2 products, the sales fact."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from pandas.testing import assert_frame_equal

from tests.transforms.frames import (
    PROFIT,
    TZ,
    categories,
    chunkings,
    customers,
    money,
    orders,
    products,
    random_orders,
    stamps,
)
from transforms.exceptions import MissingColumnsError, MoneyTypeError, SchemaViolation
from transforms.star import (
    VALID_FROM_MIN,
    VALID_TO_MAX,
    dim_category,
    dim_customer,
    dim_product,
    fact_sales,
    fact_sales_chunks,
)

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _timestamps(*values: pd.Timestamp) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(list(values)).tz_convert(TZ).as_unit("us")


def _dimensions(
    product_frame: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    dp = product_frame if product_frame is not None else dim_product(products(), categories())
    return dp, dim_customer(customers()), dim_category(categories())


def _changed_products() -> pd.DataFrame:
    """Atlas (10) gets a new price on 15 March, Xadrez (11) moves to Livros on 1 June, Gibi is renamed."""
    changed = products()
    changed["preco"] = money("12.00", "50.00", "5.00")
    changed["categoria_id"] = [1, 1, 1]
    changed["nome"] = ["Atlas", "Xadrez", "Gibi Raro"]
    changed["atualizado_em"] = stamps("2024-03-15", "2024-06-01", "2024-02-01")
    return changed


def test_dim_category_and_dim_customer_start_with_the_unknown_member():
    assert_frame_equal(
        dim_category(categories()),
        pd.DataFrame(
            {
                "category_key": [-1, 1, 2],
                "categoria_id": [-1, 1, 2],
                "categoria": pd.array(["Unknown", "Livros", "Jogos"], dtype="str"),
            }
        ),
    )
    assert_frame_equal(
        dim_customer(customers()),
        pd.DataFrame(
            {
                "customer_key": [-1, 100, 101],
                "cliente_id": [-1, 100, 101],
                "nome": pd.array(["Unknown", "Ana", "Bia"], dtype="str"),
                "email": pd.array([None, "ana@example.com", "bia@example.com"], dtype="str"),
                "cidade": pd.array(["Unknown", "Recife", "Natal"], dtype="str"),
                "uf": pd.array([None, "PE", "RN"], dtype="str"),
            }
        ),
    )


def test_dim_product_first_build_has_one_current_version_per_product():
    expected = pd.DataFrame(
        {
            "product_key": [-1, 1, 2, 3],
            "produto_id": [-1, 10, 11, 12],
            "nome": pd.array(["Unknown", "Atlas", "Xadrez", "Gibi"], dtype="str"),
            "categoria_id": [-1, 1, 2, 1],
            "categoria": pd.array(["Unknown", "Livros", "Jogos", "Livros"], dtype="str"),
            "preco": money(None, "10.00", "50.00", "5.00"),
            "custo": money(None, "6.00", "30.00", "2.50"),
            "valid_from": _timestamps(*[VALID_FROM_MIN] * 4),
            "valid_to": _timestamps(*[VALID_TO_MAX] * 4),
            "is_current": [True] * 4,
        }
    )
    assert_frame_equal(dim_product(products(), categories()), expected)


def test_dim_product_rebuild_closes_changed_versions_and_opens_new_ones():
    first = dim_product(products(), categories())
    second = dim_product(_changed_products(), categories(), first)
    march, june = pd.Timestamp("2024-03-15", tz=TZ), pd.Timestamp("2024-06-01", tz=TZ)
    expected = pd.DataFrame(
        {
            "product_key": [-1, 1, 2, 3, 4, 5],
            "produto_id": [-1, 10, 11, 12, 10, 11],
            # nome is type 1: every version shows the latest name
            "nome": pd.array(["Unknown", "Atlas", "Xadrez", "Gibi Raro", "Atlas", "Xadrez"], dtype="str"),
            "categoria_id": [-1, 1, 2, 1, 1, 1],
            "categoria": pd.array(["Unknown", "Livros", "Jogos", "Livros", "Livros", "Livros"], dtype="str"),
            "preco": money(None, "10.00", "50.00", "5.00", "12.00", "50.00"),
            "custo": money(None, "6.00", "30.00", "2.50", "6.00", "30.00"),
            "valid_from": _timestamps(*[VALID_FROM_MIN] * 4, march, june),
            "valid_to": _timestamps(VALID_TO_MAX, march, june, VALID_TO_MAX, VALID_TO_MAX, VALID_TO_MAX),
            "is_current": [True, False, False, True, True, True],
        }
    )
    assert_frame_equal(second, expected)
    # Rebuilding from the same snapshot changes nothing.
    assert_frame_equal(dim_product(_changed_products(), categories(), second), second)


def test_dim_product_adds_new_products_and_keeps_deleted_ones():
    first = dim_product(products(), categories())
    later = pd.concat(
        [
            products().iloc[[0, 1]],
            pd.DataFrame(
                {
                    "id": [13],
                    "nome": ["Dama"],
                    "categoria_id": [2],
                    "preco": money("20.00"),
                    "custo": money("9.00"),
                    "atualizado_em": stamps("2024-07-01"),
                }
            ),
        ],
        ignore_index=True,
    )
    second = dim_product(later, categories(), first)
    assert second["product_key"].tolist() == [-1, 1, 2, 3, 4]
    assert second["produto_id"].tolist() == [-1, 10, 11, 12, 13]
    assert second["is_current"].all()
    assert second["valid_from"].iloc[4] == VALID_FROM_MIN  # a new product's first version covers all history


def test_dim_product_without_atualizado_em_dates_changes_at_as_of():
    first = dim_product(products().drop(columns="atualizado_em"), categories())
    second = dim_product(
        _changed_products().drop(columns="atualizado_em"),
        categories(),
        first,
        as_of="2024-05-05 12:00",
    )
    assert second.loc[second["product_key"] == 4, "valid_from"].iloc[0] == pd.Timestamp("2024-05-05 12:00", tz=TZ)
    with pytest.raises(Exception, match="as_of"):
        dim_product(_changed_products().drop(columns="atualizado_em"), categories(), first)


def test_dim_product_refuses_a_change_dated_before_the_version_it_closes():
    second = dim_product(_changed_products(), categories(), dim_product(products(), categories()))
    again = _changed_products().assign(preco=money("13.00", "50.00", "5.00"))  # atualizado_em still 15 March
    with pytest.raises(SchemaViolation) as error:
        dim_product(again, categories(), second)
    assert error.value.table == "products" and error.value.values == [10]


def test_dim_product_refuses_duplicate_products():
    doubled = pd.concat([products(), products().iloc[[0]]], ignore_index=True)
    with pytest.raises(SchemaViolation, match="products.id"):
        dim_product(doubled, categories())


def test_fact_sales_keys_each_order_to_every_dimension():
    fact = fact_sales(orders(), *_dimensions())
    expected = pd.DataFrame(
        {
            "order_id": [1, 2, 3, 4, 5],
            "date_key": [20240301, 20240331, 20240401, 20241231, 20250101],  # local dates
            "product_key": [1, 2, 1, 3, -1],
            "customer_key": [100, 101, 100, -1, 101],
            "category_key": [1, 2, 1, 1, -1],
            "quantidade": [1, 2, 3, 1, 1],
            "total": money("10.00", "100.00", "30.00", "5.00", "7.00"),
            "custo": money("6.00", "60.00", "18.00", "2.50", "1.00"),
            "lucro": money("4.00", "40.00", "12.00", "2.50", "6.00", dtype=PROFIT),
        }
    )
    assert_frame_equal(fact, expected)


def test_old_facts_keep_the_product_version_and_category_they_were_sold_under():
    second = dim_product(_changed_products(), categories(), dim_product(products(), categories()))
    fact = fact_sales(orders(), *_dimensions(second))
    # Order 1 (1 March) predates Atlas's price change, order 3 (1 April) follows it;
    # order 2 (31 March) was sold while Xadrez was still in Jogos.
    assert fact["product_key"].tolist() == [1, 2, 4, 3, -1]
    assert fact["category_key"].tolist() == [1, 2, 1, 1, -1]


def test_fact_sales_of_no_orders_is_empty_with_the_fact_columns():
    fact = fact_sales([], *_dimensions())
    assert len(fact) == 0
    assert list(fact.columns) == list(fact_sales(orders(), *_dimensions()).columns)
    assert fact.dtypes.equals(fact_sales(orders(), *_dimensions()).dtypes)


def test_fact_sales_rejects_float_money_and_missing_columns():
    with pytest.raises(MoneyTypeError):
        fact_sales(orders().assign(custo=1.5), *_dimensions())
    with pytest.raises(MissingColumnsError, match="criado_em"):
        fact_sales(orders().drop(columns="criado_em"), *_dimensions())


def test_decimal_objects_and_naive_local_times_are_accepted():
    plain = orders()
    plain["total"] = plain["total"].astype(object)
    plain["criado_em"] = plain["criado_em"].dt.tz_localize(None)
    assert_frame_equal(fact_sales(plain, *_dimensions()), fact_sales(orders(), *_dimensions()))


def test_inputs_are_not_mutated():
    inputs = [orders(), products(), categories(), customers()]
    copies = [frame.copy(deep=True) for frame in inputs]
    first = dim_product(inputs[1], inputs[2])
    first_copy = first.copy(deep=True)
    second = dim_product(_changed_products(), inputs[2], first)
    fact_sales(inputs[0], second, dim_customer(inputs[3]), dim_category(inputs[2]))
    for frame, copy in zip([*inputs, first], [*copies, first_copy], strict=True):
        assert_frame_equal(frame, copy)


@FAST
@given(chunkings(random_orders()))
def test_fact_from_any_chunking_equals_the_fact_built_whole(case):
    whole, chunks = case
    dimensions = _dimensions(dim_product(_changed_products(), categories(), dim_product(products(), categories())))
    streamed = list(fact_sales_chunks(iter(chunks), *dimensions))
    assert [len(c) for c in streamed] == [len(c) for c in chunks]
    assert_frame_equal(fact_sales(iter(chunks), *dimensions), fact_sales(whole, *dimensions))


@FAST
@given(random_orders())
def test_every_fact_row_joins_to_exactly_one_row_of_each_dimension(frame):
    dp, dc, dk = _dimensions(dim_product(_changed_products(), categories(), dim_product(products(), categories())))
    fact = fact_sales(frame, dp, dc, dk)
    for key, dimension in (("product_key", dp), ("customer_key", dc), ("category_key", dk)):
        joined = fact[["order_id", key]].merge(dimension, on=key, how="left", indicator=True)
        assert len(joined) == len(fact) and (joined["_merge"] == "both").all()
    # The version found is the one whose interval contains the order time.
    joined = (
        fact[["order_id", "product_key"]]
        .merge(dp, on="product_key")
        .merge(
            frame[["id", "criado_em", "produto_id"]],
            left_on="order_id",
            right_on="id",
            suffixes=("", "_order"),
        )
    )
    known = joined[joined["product_key"] != -1]
    assert ((known["valid_from"] <= known["criado_em"]) & (known["criado_em"] < known["valid_to"])).all()
    assert (known["produto_id"] == known["produto_id_order"]).all()
    assert set(joined.loc[joined["product_key"] == -1, "produto_id_order"]) <= {77}
    assert np.array_equal(
        fact["lucro"].to_numpy(object),
        (frame["total"].to_numpy(object) - frame["custo"].to_numpy(object)),
    )
