"""rollup: named aggregation over chunks equals pandas groupby on the whole frame."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

from dw_analytics.core.exceptions import ConfigurationError
from transforms.rollup import combine_partials, finalize, partial_aggregate, rollup

MONEY = pd.ArrowDtype(pa.decimal128(18, 2))
MONEY_SUM = pd.ArrowDtype(pa.decimal128(38, 2))


def money(*values):
    return pd.array([None if v is None else Decimal(v) for v in values], dtype=MONEY)


def money_sum(*values):
    return pd.array([None if v is None else Decimal(v) for v in values], dtype=MONEY_SUM)


@pytest.fixture
def sales():
    return pd.DataFrame(
        {
            "categoria": ["livros", "jogos", "livros", None, "jogos", "livros"],
            "id": [1, 2, 3, 4, 5, 6],
            "quantidade": [1, 2, 3, 4, 5, 6],
            "total": money("10.00", "5.50", None, "7.00", "0.01", "0.02"),
            "desconto": [0.5, np.nan, 1.5, 2.0, 1.0, 0.5],
        }
    )


def split(df, cuts):
    bounds = [0, *sorted(cuts), len(df)]
    return [df.iloc[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def test_rollup_gives_exact_expected_frame_for_every_function(sales):
    result = rollup(
        split(sales, [2, 3]),
        by="categoria",
        total_vendas=("id", "size"),
        n_total=("total", "count"),
        receita=("total", "sum"),
        valor_medio=("total", "mean"),
        menor=("total", "min"),
        maior=("quantidade", "max"),
        itens=("quantidade", "sum"),
        desconto_medio=("desconto", "mean"),
    )
    expected = pd.DataFrame(
        {
            "categoria": pd.Series(["jogos", "livros"], dtype=sales["categoria"].dtype),
            "total_vendas": np.array([2, 3], dtype="int64"),
            "n_total": np.array([2, 2], dtype="int64"),
            "receita": money_sum("5.51", "10.02"),
            # 5.51 / 2 = 2.755 -> 2.76 (half-even: 5 after odd 5); 10.02 / 2 = 5.01
            "valor_medio": money_sum("2.76", "5.01"),
            "menor": money("0.01", "0.02"),
            "maior": np.array([5, 6], dtype="int64"),
            "itens": np.array([7, 10], dtype="int64"),
            "desconto_medio": [1.0, 2.5 / 3],
        }
    )
    assert_frame_equal(result, expected)


def test_rollup_accepts_a_single_dataframe_and_sorts_by_all_keys():
    df = pd.DataFrame({"a": [2, 1, 2, 1], "b": ["y", "x", "x", "x"], "v": [1, 2, 3, 4]})
    result = rollup(df, by=["a", "b"], s=("v", "sum"), n=("v", "size"))
    expected = pd.DataFrame({"a": [1, 2, 2], "b": pd.Series(["x", "x", "y"], dtype=df["b"].dtype), "s": [6, 3, 1]})
    expected["n"] = np.array([2, 1, 1], dtype="int64")
    assert_frame_equal(result, expected)


def test_decimal_mean_rounds_half_even_to_the_column_scale():
    df = pd.DataFrame({"k": ["a", "a", "b", "b", "c"], "v": money("0.01", "0.02", "-0.01", "-0.02", None)})
    result = rollup(df, by="k", m=("v", "mean"), s=("v", "sum"))
    # 0.03/2 = 0.015 -> 0.02 ; -0.03/2 = -0.015 -> -0.02 ; no values -> null mean, zero sum
    assert result["m"].tolist() == [Decimal("0.02"), Decimal("-0.02"), pd.NA]
    assert result["s"].tolist() == [Decimal("0.03"), Decimal("-0.03"), Decimal("0.00")]
    assert result["m"].dtype == MONEY_SUM


def test_decimal_sum_beyond_input_precision_does_not_overflow():
    big = "9999999999999999.99"  # the largest decimal(18, 2)
    df = pd.DataFrame({"k": ["a"] * 3, "v": money(big, big, big)})
    result = rollup(split(df, [1, 2]), by="k", s=("v", "sum"), m=("v", "mean"))
    assert result["s"].tolist() == [Decimal(big) * 3]
    assert result["m"].tolist() == [Decimal(big)]


def test_empty_input_returns_empty_frame_with_the_named_columns():
    result = rollup([], by="categoria", total_vendas=("id", "size"), receita=("total", "sum"))
    assert list(result.columns) == ["categoria", "total_vendas", "receita"]
    assert len(result) == 0


def test_empty_chunks_keep_the_input_dtypes(sales):
    result = rollup([sales.iloc[:0]], by="categoria", receita=("total", "sum"))
    assert list(result.columns) == ["categoria", "receita"]
    assert len(result) == 0
    assert result["receita"].dtype == MONEY_SUM


def test_null_keys_are_dropped_like_pandas_dropna(sales):
    result = rollup(sales, by="categoria", n=("id", "size"))
    assert result["categoria"].tolist() == ["jogos", "livros"]
    assert result["n"].sum() == 5


def test_unknown_function_or_column_is_a_configuration_error(sales):
    with pytest.raises(ConfigurationError, match="unsupported function 'median'"):
        rollup(sales, by="categoria", x=("total", "median"))
    with pytest.raises(ConfigurationError, match=r"\['nope'\] not in the data"):
        rollup(sales, by="categoria", x=("nope", "sum"))


def test_building_blocks_compose_to_rollup_in_any_grouping(sales):
    aggs = {"s": ("total", "sum"), "m": ("desconto", "mean"), "n": ("id", "size")}
    parts = [partial_aggregate(c, "categoria", aggs) for c in split(sales, [1, 2, 4])]
    tree = combine_partials(
        [
            combine_partials(parts[:2], "categoria", aggs),
            combine_partials(parts[2:], "categoria", aggs),
        ],
        "categoria",
        aggs,
    )
    assert_frame_equal(finalize(tree, "categoria", aggs), rollup(sales, by="categoria", **aggs))


# --- property tests -----------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "c", "é", None])
CENTS = st.integers(min_value=-(10**12), max_value=10**12)


@st.composite
def frames_and_cuts(draw):
    n = draw(st.integers(min_value=0, max_value=40))
    df = pd.DataFrame(
        {
            "k1": draw(st.lists(KEYS, min_size=n, max_size=n)),
            "k2": draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)),
            "i": draw(st.lists(st.integers(-(10**9), 10**9), min_size=n, max_size=n)),
            "f": draw(
                st.lists(
                    st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)),
                    min_size=n,
                    max_size=n,
                )
            ),
            "d": pd.array(
                [
                    None if c is None else Decimal(c).scaleb(-2)
                    for c in draw(st.lists(st.one_of(st.none(), CENTS), min_size=n, max_size=n))
                ],
                dtype=MONEY,
            ),
        }
    )
    df["f"] = df["f"].astype("float64")
    cuts = draw(st.lists(st.integers(0, n), max_size=6)) if n else []
    return df, cuts


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames_and_cuts(), st.sampled_from([["k1"], ["k2"], ["k1", "k2"]]))
def test_rollup_over_any_chunking_equals_pandas_groupby_on_whole_frame(data, by):
    df, cuts = data
    aggs = {
        "n": ("i", "size"),
        "ni": ("i", "count"),
        "si": ("i", "sum"),
        "mi": ("i", "mean"),
        "lo": ("i", "min"),
        "hi": ("f", "max"),
        "nf": ("f", "count"),
        "sf": ("f", "sum"),
        "mf": ("f", "mean"),
    }
    result = rollup(split(df, cuts), by=by, **aggs)
    expected = df.groupby(by, dropna=True).agg(**aggs).reset_index()
    if len(expected) == 0:
        assert len(result) == 0
        return
    assert_frame_equal(result, expected, check_exact=False, rtol=1e-9, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(frames_and_cuts())
def test_decimal_sums_and_means_equal_python_decimal_arithmetic(data):
    df, cuts = data
    result = rollup(split(df, cuts), by="k1", s=("d", "sum"), m=("d", "mean"), lo=("d", "min"))
    expected_rows = []
    keys = df["k1"].tolist()
    for key in sorted({k for k in keys if isinstance(k, str)}):
        values = [v for k, v in zip(keys, df["d"], strict=True) if k == key and v is not pd.NA]
        total = sum(values, Decimal("0.00"))
        mean = (total / len(values)).quantize(Decimal("0.01"), ROUND_HALF_EVEN) if values else pd.NA
        expected_rows.append((key, total, mean, min(values) if values else pd.NA))
    got = list(zip(result["k1"], result["s"], result["m"].tolist(), result["lo"].tolist(), strict=True))
    assert got == expected_rows


ARROW_CATEGORY = pd.ArrowDtype(pa.dictionary(pa.int32(), pa.string()))


@pytest.mark.parametrize("dtype", ["category", ARROW_CATEGORY], ids=["pandas-categorical", "arrow-dictionary"])
def test_categorical_keys_with_different_categories_per_chunk_keep_every_group(dtype):
    chunks = [
        pd.DataFrame({"uf": pd.Series(["SP", "RJ", "SP"], dtype=dtype), "total": [1, 2, 3]}),
        pd.DataFrame({"uf": pd.Series(["PE", "SP"], dtype=dtype), "total": [10, 20]}),
        pd.DataFrame({"uf": pd.Series(["AM"], dtype=dtype), "total": [100]}),
    ]

    result = rollup(chunks, by="uf", n=("total", "size"), soma=("total", "sum"))

    assert result["uf"].astype(str).tolist() == ["AM", "PE", "RJ", "SP"]  # every group, sorted by value
    assert result[["n", "soma"]].values.tolist() == [[1, 100], [1, 10], [1, 2], [3, 24]]
    assert result["uf"].dtype == (pd.CategoricalDtype(["AM", "PE", "RJ", "SP"]) if dtype == "category" else dtype)
