"""`dw.catalog()`, `dw.load_table()` and `dw.pipeline_from_function()`: the notebook API."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from django.conf import settings
from django.db.models import F

import dw_analytics as dw
from dw_analytics.core.exceptions import ConfigurationError
from dw_analytics.core.registry import get_pipeline
from dw_analytics.extract.exceptions import SourceNotFoundError
from dw_analytics.load.parquet import open_snapshot, read_snapshot
from dw_analytics.pipelines.nightly import POWERBI_FOLDER, SNAPSHOT_TABLES
from dw_analytics.sales.models import Categoria, Cliente, Pedido
from dw_analytics.warehouse.models import DimCategory, FactSales, PipelineRun
from tests.analyst.conftest import sql_cents
from transforms import rollup

WAREHOUSE = [
    "dim_category", "dim_customer", "dim_date", "dim_product", "fact_sales",
    "sales_by_category", "sales_by_category_month",
]  # fmt: skip
SOURCES = ["categoria", "cliente", "destino", "fonte_externa", "pedido", "produto"]


# -- catalog -----------------------------------------------------------------------------
def test_catalog_lists_warehouse_source_and_parquet_tables_with_counts_and_refresh_times(nightly):
    catalog = dw.catalog()
    assert catalog.columns.tolist() == [
        "name", "kind", "layer", "rows", "columns", "last_refresh", "path", "description",
    ]  # fmt: skip
    tables = catalog[catalog["kind"] == "table"].set_index("name")
    assert tables.index.tolist() == WAREHOUSE + SOURCES  # run history, locks... left out
    assert (tables.loc[WAREHOUSE, "layer"] == "warehouse").all()
    assert (tables.loc[SOURCES, "layer"] == "source").all()
    for name, model in SNAPSHOT_TABLES.items():
        assert tables.loc[name, "rows"] == model.objects.count()
        assert tables.loc[name, "columns"] == len(model._meta.concrete_fields)
        assert tables.loc[name, "path"] == model._meta.db_table
    assert tables.loc["pedido", "rows"] == 400
    finished = PipelineRun.objects.get(pk=nightly.run_id).finished_at
    assert (tables.loc[WAREHOUSE, "last_refresh"] == pd.Timestamp(finished)).all()
    assert str(tables["last_refresh"].dt.tz) == settings.TIME_ZONE
    assert tables.loc["pedido", "last_refresh"] is pd.NaT
    assert tables.loc["destino", "last_refresh"] == pd.Timestamp(finished)  # written by etl in nightly

    snapshot = open_snapshot(POWERBI_FOLDER)
    files = catalog[catalog["kind"] == "parquet"].set_index("name")
    assert sorted(files.index) == sorted(SNAPSHOT_TABLES)
    for name, entry in snapshot.manifest["tables"].items():
        assert files.loc[name, "rows"] == entry["n_rows"] == tables.loc[name, "rows"]
        assert files.loc[name, "columns"] == len(entry["schema"])
        assert files.loc[name, "path"] == str(snapshot.path / entry["path"])  # fact_sales/ is a folder
    assert (files["last_refresh"] == pd.Timestamp(snapshot.manifest["created_at"])).all()


def test_catalog_of_an_empty_warehouse_has_zero_rows_no_refresh_time_and_no_parquet(db, output_dir):
    catalog = dw.catalog(include_sources=False)
    assert catalog["name"].tolist() == WAREHOUSE
    assert catalog["rows"].tolist() == [0] * len(WAREHOUSE)
    assert catalog["last_refresh"].isna().all()


# -- load_table --------------------------------------------------------------------------
def test_load_table_reads_the_database_in_key_order_with_exact_decimals(nightly):
    fact = dw.load_table("fact_sales")
    expected = list(FactSales.objects.order_by("pk").values_list("order_id", "total"))
    assert list(zip(fact["order_id"], fact["total"], strict=True)) == expected
    assert fact["total"].dtype == pd.ArrowDtype(pa.decimal128(14, 2))
    assert fact["total"].sum() == sql_cents(FactSales.objects, "total")
    assert fact.columns.tolist() == [f.attname for f in FactSales._meta.concrete_fields]


def test_load_table_takes_columns_a_limit_and_the_database_table_name(shop):
    sample = dw.load_table("pedido", columns=["id", "total"], limit=5)
    assert sample.columns.tolist() == ["id", "total"]
    assert sample["id"].tolist() == list(Pedido.objects.order_by("id").values_list("id", flat=True)[:5])
    by_db_table = dw.load_table("sales_categoria")
    assert by_db_table["nome"].tolist() == list(Categoria.objects.order_by("id").values_list("nome", flat=True))


def test_load_table_from_parquet_is_the_current_snapshot(nightly):
    published = dw.load_table("fact_sales", source="parquet")
    pd.testing.assert_frame_equal(published, read_snapshot(POWERBI_FOLDER, "fact_sales"))
    assert published["total"].dtype == pd.ArrowDtype(pa.decimal128(19, 2))
    assert len(published) == FactSales.objects.count()
    assert published["total"].sum() == sql_cents(FactSales.objects, "total")
    subset = dw.load_table("dim_date", source="parquet", columns=["date_key", "date"])
    assert subset.columns.tolist() == ["date_key", "date"]


def test_an_unknown_table_is_an_error_naming_the_valid_ones(nightly):
    with pytest.raises(
        SourceNotFoundError, match=r"unknown table 'fact_sale'; valid tables: dim_category, .*fact_sales"
    ):
        dw.load_table("fact_sale")
    with pytest.raises(SourceNotFoundError, match=r"unknown Parquet table 'pedido'.*fact_sales"):
        dw.load_table("pedido", source="parquet")
    with pytest.raises(ConfigurationError, match="source must be 'database' or 'parquet'"):
        dw.load_table("fact_sales", source="csv")


def test_reading_parquet_before_any_publication_says_to_run_nightly(db, output_dir):
    with pytest.raises(SourceNotFoundError, match=r"no Parquet snapshot.*dw.run\('nightly'\)"):
        dw.load_table("fact_sales", source="parquet")


# -- pipeline_from_function -----------------------------------------------------------------
def basket_by_state(orders) -> pd.DataFrame:
    return rollup(orders, by="uf", pedidos=("id", "size"), receita=("total", "sum"), ticket_medio=("total", "mean"))


def test_a_prototype_runs_over_chunks_and_equals_the_database_sums(shop, prototypes):
    orders = Pedido.objects.values("id", "total", uf=F("cliente__uf"))
    dw.pipeline_from_function("basket_by_state", extract=orders, transform=basket_by_state, chunksize=60)
    log = dw.run("basket_by_state")

    assert log.status == "succeeded" and log.n_processed == 400
    result = log.result.set_index("uf")
    states = sorted(Cliente.objects.filter(pedidos__isnull=False).values_list("uf", flat=True).distinct())
    assert sorted(result.index.astype(str)) == states  # uf is categorical: declared order
    for uf in states:
        in_state = Pedido.objects.filter(cliente__uf=uf)
        assert result.loc[uf, "pedidos"] == in_state.count()
        assert result.loc[uf, "receita"] == sql_cents(in_state, "total")
    whole = basket_by_state(dw.read_queryset(orders))  # one frame: the same answer
    pd.testing.assert_frame_equal(log.result, whole)
    recorded = PipelineRun.objects.get(pk=log.run_id)
    assert (recorded.pipeline, recorded.status, recorded.n_processed) == ("basket_by_state", "succeeded", 400)
    assert dw.run("basket_by_state", chunksize=1000).n_processed == 400  # chunksize per run


def test_registering_a_prototype_again_replaces_it_but_project_pipelines_are_protected(shop, prototypes):
    first = dw.pipeline_from_function("proto_count", extract=lambda: pd.DataFrame({"x": [1, 2]}), transform=len)
    second = dw.pipeline_from_function("proto_count", extract=lambda: pd.DataFrame({"x": [1, 2, 3]}), transform=len)
    assert get_pipeline("proto_count") is second is not first
    assert dw.run("proto_count").result == 3
    with pytest.raises(ConfigurationError, match="'analytics' is a project pipeline"):
        dw.pipeline_from_function("analytics", extract=lambda: pd.DataFrame(), transform=len)


def test_a_chunked_prototype_loading_a_model_replaces_on_the_first_chunk_and_appends_after(shop, prototypes):
    DimCategory.objects.create(category_key=999, categoria_id=999, categoria="stale")

    def dim_rows(categories: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {"category_key": categories["id"], "categoria_id": categories["id"], "categoria": categories["nome"]}
        )

    dw.pipeline_from_function(
        "proto_dim_category", extract=Categoria.objects.order_by("id").values("id", "nome"),
        transform=dim_rows, load=DimCategory, chunksize=4, chunked=True, mode="replace",
    )  # fmt: skip
    log = dw.run("proto_dim_category")
    expected = list(Categoria.objects.order_by("id").values_list("id", "nome"))
    assert list(DimCategory.objects.order_by("category_key").values_list("category_key", "categoria")) == expected
    assert log.n_inserted == len(expected) == 14 and log.n_deleted == 1
    refreshed = dw.catalog(include_sources=False).set_index("name").loc["dim_category", "last_refresh"]
    assert refreshed == pd.Timestamp(PipelineRun.objects.get(pk=log.run_id).finished_at)


def test_a_prototype_loading_through_a_function_counts_the_rows_it_wrote(shop, output_dir, prototypes):
    dw.pipeline_from_function(
        "proto_parquet",
        extract=Pedido.objects.values("id", "total"),
        transform=lambda orders: orders.head(10),
        load=lambda top: dw.write_parquet(top, "metrics/top.parquet"),
    )
    log = dw.run("proto_parquet")
    assert log.n_inserted == 10
    written = pd.read_parquet(output_dir / "metrics" / "top.parquet")
    assert written["id"].to_numpy().tolist() == np.arange(1, 11).tolist()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "Bad Name"}, "pipeline name must be lower case"),
        ({"extract": 42}, "extract must be a QuerySet or a function"),
        ({"transform": "sum"}, "transform must be a function"),
        ({"load": 3}, "load must be None, a Django model or a function"),
        ({"chunksize": 0}, "chunksize must be a positive number"),
        ({"chunked": True, "chunksize": 10}, "chunked=True needs a chunksize and a load"),
        ({"load": DimCategory, "mode": "merge"}, "mode must be one of append, replace, upsert"),
        ({"load": DimCategory, "mode": "upsert"}, "mode='upsert' needs unique_fields"),
    ],
)
def test_invalid_prototype_arguments_are_refused_when_built(kwargs, message, prototypes):
    arguments = {"name": "proto_bad", "extract": lambda: pd.DataFrame(), "transform": len, **kwargs}
    name = arguments.pop("name")
    with pytest.raises(ConfigurationError, match=message):
        dw.pipeline_from_function(name, **arguments)
