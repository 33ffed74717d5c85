"""The registered ``sales_partitioned`` pipeline gives the same table on the pandas and Dask engines."""

from __future__ import annotations

import pytest
from pandas.testing import assert_frame_equal

from dw_analytics.core.registry import get_pipeline
from dw_analytics.engines.pipelines import SalesPartitionedPipeline
from dw_analytics.extract.queryset import read_queryset
from dw_analytics.load.parquet import read_snapshot
from dw_analytics.sales.models import Categoria, Cliente, Produto
from dw_analytics.warehouse.models import SalesByCategory
from tests.engines.conftest import make_orders, make_reference, write_csv_files
from transforms.sales import sales_by_category


@pytest.fixture
def catalogue(db):
    reference = make_reference()
    Categoria.objects.bulk_create(Categoria(id=r.id, nome=r.nome) for r in reference["categories"].itertuples())
    Produto.objects.bulk_create(
        Produto(id=r.id, nome=r.nome, categoria_id=r.categoria_id, preco=r.preco, custo=r.custo)
        for r in reference["products"].itertuples()
    )
    Cliente.objects.bulk_create(
        Cliente(id=r.id, nome=r.nome, email=r.email, cidade=r.cidade, uf=r.uf)
        for r in reference["customers"].itertuples()
    )
    return reference


@pytest.mark.django_db
def test_sales_partitioned_on_dask_loads_what_the_pandas_engine_loads(catalogue, dask_cluster, tmp_path, output_dir):
    orders = make_orders(900, seed=3)
    write_csv_files(orders, tmp_path / "orders", n_files=3)
    assert get_pipeline("sales_partitioned") is SalesPartitionedPipeline
    fields = ["categoria_id", "total_vendas", "receita", "valor_medio", "lucro", "margem"]

    pandas_log = SalesPartitionedPipeline(source=str(tmp_path / "orders"), engine="pandas").run()
    pandas_rows = read_queryset(SalesByCategory.objects.order_by("categoria_id").values(*fields))
    dask_log = SalesPartitionedPipeline(
        source=str(tmp_path / "orders"),
        engine="dask",
        scheduler=dask_cluster.scheduler_address,
        snapshot="star",
    ).run()
    dask_rows = read_queryset(SalesByCategory.objects.order_by("categoria_id").values(*fields))

    expected = sales_by_category(orders, catalogue["products"], catalogue["categories"])
    assert_frame_equal(dask_log.result["sales_by_category"], expected)
    assert_frame_equal(dask_rows, pandas_rows)
    assert dask_rows["total_vendas"].sum() == 900
    assert dask_log.n_processed == pandas_log.n_processed == 900
    assert dask_log.result["engine"] == "dask"
    assert len(read_snapshot("star", "fact_sales")) == 900
    assert sorted(read_snapshot("star", "dim_category")["category_key"]) == [-1, 1, 2, 3, 4, 5]
