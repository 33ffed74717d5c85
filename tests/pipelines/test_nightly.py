"""The nightly refresh: published outputs, safe reruns, crashes at every step, one run at a time."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import time
from decimal import Decimal
from io import StringIO
from pathlib import Path

import openpyxl
import pyarrow.parquet as pq
import pytest
from django.core.management import call_command

from dw_analytics.core.api import run
from dw_analytics.load.parquet import list_snapshot_versions, read_snapshot
from dw_analytics.pipelines import nightly, star_schema
from dw_analytics.sales.models import Pedido
from dw_analytics.sales.services import demo_data_create
from dw_analytics.warehouse.models import FactSales, PipelineRun
from tests.dbutil import ROOT, child_env, manage
from tests.pipelines.test_star_schema import change_the_source, warehouse_state


@pytest.fixture(autouse=True)
def isolated_outputs(output_dir, settings, tmp_path):
    settings.DW_WATERMARK_LAG_S = 0
    settings.DATA_DIR = tmp_path
    return output_dir


def published_fact_total() -> Decimal:
    return sum(read_snapshot("powerbi", "fact_sales")["total"], Decimal(0))


@pytest.mark.django_db
def test_the_nightly_publishes_the_warehouse_as_one_snapshot_and_a_report(output_dir):
    demo_data_create(orders=3_000, seed=3, end=dt.date(2026, 6, 30))

    log = run("nightly")

    versions = list_snapshot_versions("powerbi")
    assert len(versions) == 1
    fact = read_snapshot("powerbi", "fact_sales")
    assert len(fact) == FactSales.objects.count() == 3_000
    assert published_fact_total() == sum(FactSales.objects.values_list("total", flat=True))
    assert set(read_snapshot("powerbi", "sales_by_category")["categoria"]) >= {"Eletrônicos"}
    workbook = openpyxl.load_workbook(log.result["outputs"]["excel_report"])
    assert workbook.sheetnames[:2] == ["Vendas por categoria", "Vendas por mês"]
    assert [s.name for s in log.steps][:3] == ["etl.extract", "etl.transform", "etl.load"]
    assert not list(Path(log.result["outputs"]["excel_report"]).parent.glob("*.png"))  # DW_REPORT_PNG is off


@pytest.mark.django_db
def test_the_report_charts_are_also_saved_as_png_when_asked(output_dir, settings):
    settings.DW_REPORT_PNG = True
    demo_data_create(orders=500, seed=3, end=dt.date(2026, 6, 30))

    log = run("nightly")

    report = Path(log.result["outputs"]["excel_report"])
    pngs = sorted(p.name for p in report.parent.glob("*.png"))
    assert pngs == [f"{report.stem}_tendencia_mensal.png", f"{report.stem}_vendas_por_categoria.png"]
    assert all((report.parent / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in pngs)


@pytest.mark.django_db
def test_a_second_night_without_new_data_changes_nothing():
    demo_data_create(orders=2_000, seed=3, end=dt.date(2026, 6, 30))
    run("nightly")
    before, versions = warehouse_state(), list_snapshot_versions("powerbi")

    log = run("nightly")

    assert warehouse_state() == before
    assert list_snapshot_versions("powerbi") == versions  # not republished
    assert (log.n_inserted, log.n_updated, log.n_deleted) == (0, 0, 0)
    assert log.result["outputs"]["powerbi_snapshot"].endswith("(unchanged)")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "target, attribute",
    [
        (star_schema.StarSchemaPipeline, "load_dimensions"),
        (star_schema.StarSchemaPipeline, "load_fact"),
        (star_schema.StarSchemaPipeline, "load_aggregates"),
    ],
    ids=["dimensions", "fact", "aggregates"],
)
def test_a_crash_at_any_step_leaves_the_previous_night_and_the_next_run_completes(monkeypatch, target, attribute):
    demo_data_create(orders=2_000, seed=5, end=dt.date(2026, 6, 30))
    run("nightly")
    before, versions, total = warehouse_state(), list_snapshot_versions("powerbi"), published_fact_total()
    change_the_source()
    original = getattr(target, attribute)

    def crash_after_working(*args, **kwargs):
        original(*args, **kwargs)  # the step did its writes...
        raise OSError("injected crash")  # ...then the process "died"

    monkeypatch.setattr(target, attribute, crash_after_working)
    failed = run("nightly", raise_errors=False)
    monkeypatch.undo()

    assert failed.status == "failed" and "injected crash" in failed.error
    assert warehouse_state() == before
    assert list_snapshot_versions("powerbi") == versions and published_fact_total() == total

    run("nightly")
    incremental = warehouse_state()
    run("nightly", mode="full")
    assert warehouse_state() == incremental
    assert FactSales.objects.count() == Pedido.objects.count()


@pytest.mark.django_db
def test_a_failed_publish_keeps_the_previous_snapshot_and_the_next_night_publishes(monkeypatch):
    demo_data_create(orders=2_000, seed=5, end=dt.date(2026, 6, 30))
    run("nightly")
    versions, total = list_snapshot_versions("powerbi"), published_fact_total()
    change_the_source()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nightly, "publish_snapshot", full_disk)
    failed = run("nightly", raise_errors=False)
    monkeypatch.undo()

    assert failed.status == "failed" and "No space left on device" in failed.error
    assert list_snapshot_versions("powerbi") == versions and published_fact_total() == total
    committed = warehouse_state()

    retry = run("nightly")  # no new source data, but the snapshot is behind the warehouse

    assert warehouse_state() == committed
    assert not retry.result["outputs"]["powerbi_snapshot"].endswith("(unchanged)")
    assert published_fact_total() == sum(FactSales.objects.values_list("total", flat=True))


SLOW_NIGHT = """
import time, django
django.setup()
from dw_analytics.pipelines import star_schema
original = star_schema.write_model
def slow_write(*args, **kwargs):
    result = original(*args, **kwargs)
    print("WRITING", flush=True)
    time.sleep(60)
    return result
star_schema.write_model = slow_write
from django.core.management import call_command
call_command("refresh_warehouse", "--quiet")
"""


def start_slow_night(tmp_path):
    env = child_env(DW_OUTPUT_DIR=str(tmp_path / "out"), DW_DATA_DIR=str(tmp_path), DW_WATERMARK_LAG_S="0")
    child = subprocess.Popen([sys.executable, "-c", SLOW_NIGHT], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "WRITING"  # inside the first load, transaction open
    return child, env


@pytest.mark.django_db(transaction=True)
def test_a_killed_night_leaves_the_previous_result_and_the_next_run_completes(tmp_path):
    demo_data_create(orders=2_000, seed=8, end=dt.date(2026, 6, 30))
    first = subprocess.run(
        manage("refresh_warehouse", "--quiet"), cwd=ROOT, env=start_env(tmp_path), capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr
    before = warehouse_state()
    change_the_source()

    child, env = start_slow_night(tmp_path)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)

    assert warehouse_state() == before
    rerun = subprocess.run(manage("refresh_warehouse", "--quiet"), cwd=ROOT, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert FactSales.objects.count() == Pedido.objects.count()
    killed = PipelineRun.objects.get(pipeline="nightly", error__startswith="Abandoned")
    assert killed.status == "failed" and "found by run" in killed.error
    assert not PipelineRun.objects.filter(status="running").exists()


def start_env(tmp_path):
    return child_env(DW_OUTPUT_DIR=str(tmp_path / "out"), DW_DATA_DIR=str(tmp_path), DW_WATERMARK_LAG_S="0")


@pytest.mark.django_db(transaction=True)
def test_a_second_concurrent_night_exits_at_once_with_exit_code_3(tmp_path):
    demo_data_create(orders=500, seed=9, end=dt.date(2026, 6, 30))
    child, env = start_slow_night(tmp_path)
    try:
        started = time.monotonic()
        second = subprocess.run(
            manage("refresh_warehouse", "--quiet"), cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert time.monotonic() - started < 20
        assert second.returncode == 3
        assert "pipeline 'nightly' is already running" in second.stderr
    finally:
        child.kill()
        child.wait()


@pytest.mark.django_db
def test_refresh_warehouse_full_refresh_and_backfill_options():
    demo_data_create(orders=1_000, seed=2, end=dt.date(2026, 6, 30))
    out = StringIO()
    call_command("refresh_warehouse", "--quiet", "--full-refresh", stdout=out)
    assert "Nightly refresh succeeded" in out.getvalue()
    assert PipelineRun.objects.get().parameters == {"mode": "full"}

    call_command("refresh_warehouse", "--quiet", "--backfill", "2026-01-01", "2026-01-31", stdout=StringIO())
    assert PipelineRun.objects.latest("id").parameters == {
        "mode": "backfill",
        "date_from": "2026-01-01",
        "date_to": "2026-01-31",
    }


@pytest.mark.django_db
def test_an_incremental_night_rewrites_only_the_touched_months_of_the_snapshot():
    from dw_analytics.load.parquet import open_snapshot

    demo_data_create(orders=3_000, seed=4, end=dt.date(2026, 6, 30))
    run("nightly")
    before = open_snapshot("powerbi").path / "fact_sales"
    inodes = {p.relative_to(before): p.stat().st_ino for p in before.rglob("*.parquet")}
    change_the_source()

    log = run("nightly")

    after = open_snapshot("powerbi").path / "fact_sales"
    touched = {f"month_key={m}" for m in log.result["touched_months"]}
    for path in after.rglob("*.parquet"):
        relative = path.relative_to(after)
        carried = relative.parts[0] not in touched
        assert (inodes.get(relative) == path.stat().st_ino) == carried, relative
    for month in touched:  # rewritten in key order, as a full publish writes them
        order_ids = pq.read_table(after / month).column("order_id").to_pylist()
        assert order_ids == sorted(order_ids) and order_ids, month
    published = read_snapshot("powerbi", "fact_sales").sort_values("order_id")
    stored = list(FactSales.objects.order_by("order_id").values_list("order_id", "total", "product_key"))
    assert list(zip(published["order_id"], published["total"], published["product_key"], strict=True)) == stored


@pytest.mark.django_db
def test_an_incremental_night_carries_the_unchanged_dimension_tables_over():
    from dw_analytics.load.parquet import open_snapshot

    demo_data_create(orders=3_000, seed=4, end=dt.date(2026, 6, 30))
    run("nightly")
    before = {p.stem: p.stat().st_ino for p in open_snapshot("powerbi").path.glob("dim_*.parquet")}
    change_the_source()  # a product's price changes: dim_product gets a new version

    log = run("nightly")

    assert log.result["changed_dimensions"] == ["dim_product"]
    after = {p.stem: p.stat().st_ino for p in open_snapshot("powerbi").path.glob("dim_*.parquet")}
    assert {name for name in after if after[name] == before[name]} == {"dim_date", "dim_category", "dim_customer"}
    for name, model in star_schema.DIMENSION_MODELS.items():
        key = model._meta.pk.attname
        published = read_snapshot("powerbi", name).sort_values(key)[key].tolist()
        assert published == list(model.objects.order_by(key).values_list(key, flat=True)), name
