"""recalculate: the star schema's backfill of a range, with the changed rows counted per table."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest
from django.core.management import call_command

from dw_analytics.core.exceptions import ConfigurationError
from dw_analytics.jobs.recalculate import recalculate, table_changes
from dw_analytics.pipelines.star_schema import StarSchemaPipeline
from dw_analytics.sales.models import Pedido
from dw_analytics.sales.services import demo_data_create
from dw_analytics.warehouse.models import FactSales, SalesByCategoryMonth

ZONE = dt.timezone(dt.timedelta(hours=-3))  # America/Sao_Paulo, no daylight saving since 2019


@pytest.fixture
def star(db, settings):
    settings.DW_WATERMARK_LAG_S = 0
    demo_data_create(orders=600, seed=11, end=dt.date(2025, 12, 31), years=1)
    StarSchemaPipeline(mode="full").run()


def _months() -> pd.DataFrame:
    rows = SalesByCategoryMonth.objects.values(
        "month_key", "category_key", "total_vendas", "quantidade", "receita", "lucro"
    )
    return pd.DataFrame(list(rows)).set_index(["month_key", "category_key"]).sort_index()


@pytest.mark.django_db
def test_recalculating_a_month_counts_inserted_deleted_and_changed_rows_per_table(star):
    march = Pedido.objects.filter(
        criado_em__gte=dt.datetime(2025, 3, 1, tzinfo=ZONE), criado_em__lt=dt.datetime(2025, 4, 1, tzinfo=ZONE)
    ).order_by("id")
    changed_ids = list(march.values_list("id", flat=True)[:3])
    deleted = march[3]
    Pedido.objects.filter(id__in=changed_ids).update(total=Decimal("1.23"))  # .update() keeps atualizado_em
    deleted.delete()
    new = Pedido.objects.create(
        cliente_id=deleted.cliente_id, produto_id=deleted.produto_id, quantidade=1, total=Decimal("9.99"),
        custo=Decimal("1.00"), criado_em=dt.datetime(2025, 3, 15, 12, tzinfo=ZONE),
    )  # fmt: skip
    months_before = _months()
    outside_before = FactSales.objects.exclude(date_key__range=(20250301, 20250331)).count()

    report = recalculate("star_schema", "2025-03-01", "2025-03-31", triggered_by="test")

    fact = report.table("fact_sales")
    in_march = FactSales.objects.filter(date_key__range=(20250301, 20250331)).count()
    assert (fact.n_inserted, fact.n_deleted, fact.n_changed) == (1, 1, 3)
    assert (fact.n_before, fact.n_after, fact.n_unchanged) == (in_march, in_march, in_march - 4)
    assert FactSales.objects.get(order_id=new.id).total == Decimal("9.99")
    assert FactSales.objects.exclude(date_key__range=(20250301, 20250331)).count() == outside_before
    # the monthly aggregate: the (month, category) groups whose values the database now differs in
    months_after = _months()
    groups = months_before.index.union(months_after.index)
    b, a = months_before.reindex(groups), months_after.reindex(groups)
    differs = (b != a).any(axis=1) & b.notna().all(axis=1) & a.notna().all(axis=1)
    monthly = report.table("sales_by_category_month")
    assert monthly.n_changed == int(differs.sum()) > 0
    assert monthly.n_inserted == int((b.isna().all(axis=1)).sum())
    assert monthly.n_deleted == int((a.isna().all(axis=1)).sum())
    assert all(str(k[0]) == "202503" for k in groups[differs])
    assert report.table("sales_by_category").n_changed >= 1


@pytest.mark.django_db
def test_recalculating_without_changes_reports_nothing_changed_and_the_command_prints_the_table(star, capsys):
    call_command("recalculate", "star_schema", "--from", "2025-06-01", "--to", "2025-06-30")
    out = capsys.readouterr().out
    in_june = FactSales.objects.filter(date_key__range=(20250601, 20250630)).count()
    fact_line = next(line for line in out.splitlines() if line.startswith("fact_sales"))
    assert fact_line.split()[1:] == [f"{in_june:,}", f"{in_june:,}", "0", "0", "0", f"{in_june:,}"]


@pytest.mark.django_db
def test_a_pipeline_without_a_date_range_is_refused_naming_those_with_one():
    with pytest.raises(ConfigurationError, match="these can: .*star_schema"):
        recalculate("analytics", "2025-01-01", "2025-01-31")
    with pytest.raises(ConfigurationError, match="after"):
        recalculate("star_schema", "2025-02-01", "2025-01-31")


def test_table_changes_compares_fingerprints_by_key():
    before = pd.DataFrame({"k": [1, 2, 3], "row_hash": [10, 20, 30]})
    after = pd.DataFrame({"k": [2, 3, 4], "row_hash": [20, 31, 40]})
    changes = table_changes("t", before, after, ("k",))
    assert (changes.n_inserted, changes.n_deleted, changes.n_changed, changes.n_unchanged) == (1, 1, 1, 1)
