"""The Dask engine gives exactly the pandas engine's results, on CSV and Parquet sources."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pytest
from pandas.testing import assert_frame_equal

from dw_analytics.engines import PandasEngine, csv_partitions, map_partitions, parquet_partitions
from dw_analytics.load.exceptions import LoadValidationError
from dw_analytics.load.parquet import open_snapshot, read_snapshot
from tests.engines.conftest import (
    make_orders,
    make_reference,
    with_category,
    write_csv_files,
    write_hive_parquet,
)
from transforms.rollup import rollup
from transforms.sales import sales_by_category
from transforms.star import dim_category, dim_customer, dim_product, fact_sales

MONEY_SCALES = {"total": 2, "custo": 2}


@pytest.fixture(scope="module")
def reference():
    return make_reference()


@pytest.fixture(scope="module")
def orders(reference):
    return with_category(make_orders(), reference)


@pytest.fixture(scope="module")
def csv_parts(orders, tmp_path_factory):
    folder = tmp_path_factory.mktemp("csv")
    write_csv_files(orders, folder)
    # Small chunks: every partition is streamed in several chunks on its worker.
    return csv_partitions(folder, decimals=MONEY_SCALES, dates=["criado_em"], chunksize=400)


@pytest.fixture(scope="module")
def parquet_parts(orders, tmp_path_factory):
    folder = tmp_path_factory.mktemp("parquet")
    write_hive_parquet(orders, folder)
    return parquet_partitions(folder, batch_size=500)


@pytest.fixture
def dims(reference):
    return {
        "dim_category": dim_category(reference["categories"]),
        "dim_customer": dim_customer(reference["customers"]),
        "dim_product": dim_product(reference["products"], reference["categories"]),
    }


AGGS = {
    "n": ("id", "size"),
    "receita": ("total", "sum"),
    "ticket": ("total", "mean"),
    "menor": ("custo", "min"),
    "maior": ("custo", "max"),
    "unidades": ("quantidade", "sum"),
}


def test_csv_rollup_on_dask_equals_the_chunked_pandas_rollup(dask_engine, csv_parts):
    expected = rollup(PandasEngine()._chunks(csv_parts), by=["categoria_id", "categoria"], **AGGS)

    result = dask_engine.rollup(csv_parts, by=["categoria_id", "categoria"], **AGGS)

    assert_frame_equal(result, expected)
    assert result["receita"].dtype == pd.ArrowDtype(pa.decimal128(38, 2))
    assert [r.n_rows for r in dask_engine.reports] == [1000, 1000, 1000]


def test_csv_rollup_sums_are_exact_to_the_cent(dask_engine, csv_parts, orders):
    result = dask_engine.rollup(csv_parts, by="categoria_id", receita=("total", "sum"))

    by_hand = {key: sum(group["total"].tolist(), Decimal(0)) for key, group in orders.groupby("categoria_id")}
    assert dict(zip(result["categoria_id"].tolist(), result["receita"].tolist(), strict=True)) == by_hand


def test_csv_sales_by_category_on_dask_equals_pandas(dask_engine, csv_parts, orders):
    expected = PandasEngine().sales_by_category(csv_parts)

    result = dask_engine.sales_by_category(csv_parts)

    assert_frame_equal(result, expected)
    assert_frame_equal(result, sales_by_category(orders))


def test_parquet_sales_by_category_through_products_on_dask_equals_pandas(
    dask_engine, parquet_parts, reference, orders
):
    # The files carry categoria_id too: drop it so that the products lookup is used.
    without_category = map_partitions(parquet_parts, _drop_category)
    expected = PandasEngine().sales_by_category(without_category, reference["products"], reference["categories"])

    result = dask_engine.sales_by_category(without_category, reference["products"], reference["categories"])

    assert_frame_equal(result, expected)
    assert result["total_vendas"].sum() == len(orders)
    assert len(dask_engine.reports) == len(parquet_parts) == 4


def _drop_category(chunks):
    for chunk in chunks:
        yield chunk.drop(columns=["categoria_id", "categoria"])


def test_parquet_partitions_keep_decimals_and_hive_keys(parquet_parts, orders):
    frame = PandasEngine().collect(parquet_parts).sort_values("id", ignore_index=True)

    assert frame["total"].dtype == pd.ArrowDtype(pa.decimal128(14, 2))
    assert frame["total"].tolist() == orders["total"].tolist()
    assert frame["ano"].tolist() == orders["criado_em"].dt.year.tolist()


def test_fact_snapshot_written_by_the_workers_equals_the_pandas_fact(
    dask_engine, csv_parts, parquet_parts, dims, orders, output_dir
):
    expected = fact_sales(orders.drop(columns=["categoria_id", "categoria"]), **dims)
    expected = expected.sort_values("order_id", ignore_index=True)

    for parts in (csv_parts, parquet_parts):
        facts = dask_engine.fact_sales(parts, dims)
        published = dask_engine.publish_snapshot({"fact_sales": facts, **dims}, "star", run_id="t1")
        snapshot = open_snapshot("star")
        result = snapshot.read("fact_sales").sort_values("order_id", ignore_index=True)
        assert snapshot.version == published.version
        assert len(snapshot.files("fact_sales")) == len(parts)
        assert_frame_equal(result, _as_written(expected))
        assert_frame_equal(snapshot.read("dim_category"), _as_written(dims["dim_category"]))

    pandas_result = PandasEngine().publish_snapshot(
        {"fact_sales": PandasEngine().fact_sales(csv_parts, dims), **dims}, "star_pandas"
    )
    assert pandas_result.n_inserted == published.n_inserted
    assert_frame_equal(
        read_snapshot("star_pandas", "fact_sales").sort_values("order_id", ignore_index=True),
        read_snapshot("star", "fact_sales").sort_values("order_id", ignore_index=True),
    )


def _as_written(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame as our Parquet writer gives it back (money as decimal128(19, s))."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    columns = [c.cast(pa.decimal128(19, c.type.scale)) if pa.types.is_decimal(c.type) else c for c in table.columns]
    table = pa.table(columns, names=table.column_names)
    return table.to_pandas(types_mapper=lambda t: pd.ArrowDtype(t) if pa.types.is_decimal(t) else None)


def test_hive_partitioned_write_by_the_workers_reads_back_whole(dask_engine, csv_parts, orders, output_dir):
    result = dask_engine.write_parquet_partitioned(csv_parts, "orders_by_category", partition_cols=["categoria_id"])

    import pyarrow.parquet as pq

    back = pq.read_table(output_dir / "orders_by_category", partitioning=None).to_pandas()
    assert result.n_inserted == len(orders) == len(back)
    assert sorted(back["id"].tolist()) == orders["id"].tolist()
    assert all("categoria_id=" in f and f.endswith(".parquet") for f in result.files)
    assert not [p for p in (output_dir / "orders_by_category").rglob(".*")]


def test_partitions_written_with_different_types_publish_nothing(dask_engine, csv_parts, tmp_path, output_dir):
    odd = tmp_path / "odd.csv"
    odd.write_text("id,total\n1,abc\n")
    parts = csv_partitions([csv_parts[0].path, odd], usecols=["id", "total"])

    with pytest.raises(LoadValidationError, match="same dtypes"):
        dask_engine.publish_snapshot({"orders": parts}, "mixed")

    assert not (output_dir / "mixed" / "CURRENT").exists()
    assert [p.name for p in (output_dir / "mixed").iterdir()] == []


def test_quarantined_rows_are_reported_by_partition(dask_engine, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,total\n1,10.00\n2,not money\n3,1.5\n")
    parts = csv_partitions(bad, decimals={"total": 2})

    result = dask_engine.rollup(parts, by="id", total=("total", "sum"))

    assert result["id"].tolist() == [1, 3]
    assert (dask_engine.n_rows, dask_engine.n_errors) == (3, 1)
    quarantine = dask_engine.quarantine
    assert quarantine[["line", "column"]].values.tolist() == [[3, "total"]]
