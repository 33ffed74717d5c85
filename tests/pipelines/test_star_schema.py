"""The `star_schema` pipeline: full, incremental and backfill builds agree, and reruns change nothing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dw_analytics.core.api import run
from dw_analytics.sales.models import Cliente, Pedido, Produto
from dw_analytics.sales.services import demo_data_create
from dw_analytics.warehouse.models import (
    DimCustomer,
    DimProduct,
    FactSales,
    SalesByCategory,
    SalesByCategoryMonth,
    Watermark,
)

END = dt.date(2026, 6, 30)


@pytest.fixture(autouse=True)
def no_watermark_lag(settings):
    settings.DW_WATERMARK_LAG_S = 0


@pytest.fixture
def shop(db):
    demo_data_create(orders=4_000, seed=11, end=END)


def warehouse_state() -> dict[str, list]:
    """Everything a build produces, in a comparable form."""
    return {
        "fact": list(FactSales.objects.order_by("order_id").values_list()),
        "months": list(
            SalesByCategoryMonth.objects.order_by("month_key", "category_key").values_list(
                "month_key", "category_key", "categoria", "total_vendas", "quantidade", "receita", "lucro"
            )
        ),
        "by_category": list(
            SalesByCategory.objects.order_by("categoria_id").values_list(
                "categoria_id", "categoria", "total_vendas", "receita", "valor_medio", "lucro", "margem"
            )
        ),
        "products": list(DimProduct.objects.order_by("product_key").values_list()),
    }


def change_the_source() -> None:
    """New, updated, late-arriving and deleted orders, and a product price change (SCD2)."""
    product = Produto.objects.order_by("id").first()
    product.preco += Decimal("10.00")
    product.save()
    for order in Pedido.objects.order_by("id")[:5]:
        order.total += Decimal("1.11")
        order.save()
    Pedido.objects.filter(id__in=[10, 11, 12]).delete()
    template = Pedido.objects.order_by("id").last()
    now = timezone.now()
    Pedido.objects.bulk_create(
        [
            Pedido(cliente_id=template.cliente_id, produto_id=product.id, quantidade=2, total=Decimal("99.90"),
                   custo=Decimal("50.00"), criado_em=now),  # after the price change
            # late-arriving: placed long ago, recorded now
            Pedido(cliente_id=template.cliente_id, produto_id=template.produto_id, quantidade=1,
                   total=Decimal("10.00"), custo=Decimal("4.00"), criado_em=dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)),
        ]
    )  # fmt: skip


def test_the_fact_has_one_row_per_order_and_every_key_joins(shop):
    log = run("star_schema", mode="full")

    assert FactSales.objects.count() == Pedido.objects.count() == log.n_processed
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*) FROM dw_fact_sales f
            JOIN dw_dim_date d ON d.date_key = f.date_key
            JOIN dw_dim_product p ON p.product_key = f.product_key
            JOIN dw_dim_customer c ON c.customer_key = f.customer_key
            JOIN dw_dim_category k ON k.category_key = f.category_key
            """
        )
        assert cursor.fetchone()[0] == FactSales.objects.count()
    watermark = Watermark.objects.get(name="sales.Pedido")
    newest = Pedido.objects.order_by("-atualizado_em", "-id").first()
    assert (watermark.last_updated_at, watermark.last_id) == (newest.atualizado_em, newest.id)


def test_sales_by_category_from_the_star_equals_the_analytics_pipeline(shop):
    star = run("star_schema", mode="full")
    star_rows = warehouse_state()["by_category"]

    analytics = run("analytics").result

    expected = [
        (r.categoria_id, r.categoria, r.total_vendas, r.receita, r.valor_medio, r.lucro, r.margem)
        for r in analytics.itertuples()
    ]
    assert star_rows == expected
    assert star.succeeded


def test_incremental_runs_equal_a_full_refresh_on_the_same_data(shop):
    run("star_schema")  # the first run is a full one
    change_the_source()

    log = run("star_schema")
    incremental = warehouse_state()
    run("star_schema", mode="full")
    full = warehouse_state()

    assert incremental == full
    assert (log.n_processed, log.n_inserted >= 2, log.n_deleted >= 3) == (7 + 0, True, True)
    product = Produto.objects.order_by("id").first()
    versions = DimProduct.objects.filter(produto_id=product.id).order_by("product_key")
    assert [v.is_current for v in versions] == [False, True]
    new_order = FactSales.objects.get(order_id=Pedido.objects.order_by("-id").values_list("id", flat=True)[1])
    assert new_order.product_key == versions[1].product_key  # sold after the price change


def test_a_second_run_without_source_changes_changes_nothing(shop):
    run("star_schema")
    before = warehouse_state()

    log = run("star_schema")

    assert warehouse_state() == before
    assert log.n_processed == 0
    fact_step = log.step("fact")
    assert fact_step.n_rows in (None, 0)


def add_order(cliente: Cliente) -> Pedido:
    product = Produto.objects.order_by("id").first()
    return Pedido.objects.create(
        cliente=cliente, produto=product, quantidade=1, total=Decimal("20.00"), custo=Decimal("8.00")
    )


def dimensions_built_by() -> int:
    return Watermark.objects.get(name="star_schema.dimensions").run_id


def test_dimensions_are_rebuilt_only_when_their_sources_change(shop):
    first = run("star_schema")
    customers = list(DimCustomer.objects.order_by("customer_key").values_list())

    add_order(Cliente.objects.order_by("id").first())
    only_orders = run("star_schema")

    assert dimensions_built_by() == first.run_id  # read back, not rebuilt
    assert list(DimCustomer.objects.order_by("customer_key").values_list()) == customers
    assert only_orders.step("fact").n_rows == 1

    moved = Cliente.objects.order_by("id").last()
    moved.cidade = "Manaus"
    moved.save()
    newcomer = Cliente.objects.create(nome="Nova Cliente", email="nova@example.com", cidade="Belém", uf="PA")
    order = add_order(newcomer)
    changed = run("star_schema")

    assert dimensions_built_by() == changed.run_id
    assert DimCustomer.objects.get(customer_key=moved.id).cidade == "Manaus"
    assert FactSales.objects.get(order_id=order.id).customer_key == newcomer.id  # not the Unknown member
    incremental = warehouse_state()
    run("star_schema", mode="full")
    assert warehouse_state() == incremental


def anti_joins_of(pipeline: str) -> int:
    """Run ``pipeline``; return the number of NOT EXISTS queries it sent."""
    with CaptureQueriesContext(connection) as queries:
        run(pipeline)
    return sum("NOT (EXISTS" in q["sql"].upper() for q in queries.captured_queries)


def test_the_deleted_orders_anti_join_runs_only_when_an_order_was_deleted(shop, settings):
    run("star_schema")
    add_order(Cliente.objects.order_by("id").first())
    assert anti_joins_of("star_schema") == 0

    settings.DW_WATERMARK_LAG_S = 3600  # a loaded order changed again, now inside the lag window
    changed = Pedido.objects.order_by("id").first()
    changed.save()
    assert anti_joins_of("star_schema") == 0

    gone = Pedido.objects.order_by("id").values_list("id", flat=True)[100]
    Pedido.objects.filter(id=gone).delete()
    assert anti_joins_of("star_schema") == 1
    assert not FactSales.objects.filter(order_id=gone).exists()


def test_changes_inside_the_lag_window_wait_for_the_next_run(shop, settings):
    run("star_schema")
    order = Pedido.objects.order_by("id").first()
    order.total = Decimal("12345.67")
    order.save()
    settings.DW_WATERMARK_LAG_S = 3600

    run("star_schema")
    assert FactSales.objects.get(order_id=order.id).total != Decimal("12345.67")

    settings.DW_WATERMARK_LAG_S = 0
    run("star_schema")
    assert FactSales.objects.get(order_id=order.id).total == Decimal("12345.67")


def test_backfill_rebuilds_only_the_date_range(shop):
    run("star_schema", mode="full")
    expected = warehouse_state()
    FactSales.objects.filter(date_key__range=(20260101, 20260131)).update(total=Decimal("0.01"))
    FactSales.objects.filter(date_key__range=(20250101, 20250131)).update(quantidade=99)

    log = run("star_schema", date_from="2026-01-01", date_to="2026-01-31")

    state = warehouse_state()
    assert state["fact"] != expected["fact"]  # January 2025 was outside the range
    assert FactSales.objects.filter(date_key__range=(20260101, 20260131), total=Decimal("0.01")).count() == 0
    assert FactSales.objects.filter(date_key__range=(20250101, 20250131), quantidade=99).exists()
    assert log.result["touched_months"] == [202601]
    assert log.n_deleted == log.n_inserted > 0


def test_backfill_needs_both_dates():
    from dw_analytics.core.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="backfill needs both date_from and date_to"):
        run("star_schema", date_from="2026-01-01")
    with pytest.raises(ConfigurationError, match="mode must be one of incremental, full, backfill"):
        run("star_schema", mode="sideways")
