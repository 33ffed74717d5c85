"""The `analytics` pipeline equals the database's own SQL aggregate, to the cent."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection

from dw_analytics.core.api import run
from dw_analytics.sales.services import demo_data_create
from dw_analytics.warehouse.models import PipelineRun, SalesByCategory

CENT = Decimal("0.01")


def sql_sales_by_category() -> dict[int, tuple]:
    """The same aggregate computed by the database; SQLite sums in integer cents to stay exact."""
    money = "SUM(CAST(ROUND(({col}) * 100) AS INTEGER))" if connection.vendor == "sqlite" else "SUM(({col}) * 100)"
    sql = f"""
        SELECT c.id, c.nome, COUNT(*), {money.format(col="p.total")}, {money.format(col="p.total - p.custo")}
        FROM sales_pedido p
        JOIN sales_produto pr ON pr.id = p.produto_id
        JOIN sales_categoria c ON c.id = pr.categoria_id
        GROUP BY c.id, c.nome
    """
    with connection.cursor() as cursor:
        cursor.execute(sql)
        rows = cursor.fetchall()
    return {
        cid: (nome, count, Decimal(int(receita)) / 100, Decimal(int(lucro)) / 100)
        for cid, nome, count, receita, lucro in rows
    }


@pytest.mark.django_db
def test_analytics_equals_the_database_aggregate_to_the_cent():
    demo_data_create(orders=20_000, seed=7, end=dt.date(2026, 6, 30))

    log = run("analytics", chunksize=3_000)

    expected = sql_sales_by_category()
    stored = {r.categoria_id: r for r in SalesByCategory.objects.all()}
    assert set(stored) == set(expected)
    for cid, (nome, count, receita, lucro) in expected.items():
        row = stored[cid]
        assert (row.categoria, row.total_vendas, row.receita, row.lucro) == (nome, count, receita, lucro)
        assert row.valor_medio.quantize(CENT) == (receita / count).quantize(CENT)
        assert row.margem == (lucro / receita).quantize(Decimal("0.000001"))
    assert log.n_processed == 20_000
    assert sorted(log.result["categoria_id"].tolist()) == sorted(expected)
    assert PipelineRun.objects.get(pk=log.run_id).status == "succeeded"


@pytest.mark.django_db
def test_analytics_replaces_the_previous_result():
    demo_data_create(orders=2_000, seed=1, end=dt.date(2026, 6, 30))
    run("analytics")
    first = sorted(SalesByCategory.objects.values_list("categoria_id", "total_vendas"))

    log = run("analytics")

    assert sorted(SalesByCategory.objects.values_list("categoria_id", "total_vendas")) == first
    assert log.n_deleted == len(first) and log.n_inserted == len(first)
