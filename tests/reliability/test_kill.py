"""SIGKILL from the parent test process, at a known point inside a load, a publish, a night.

Afterwards the database holds the old result or the new one (never a mix),
the Parquet folder shows one whole snapshot, and the next run completes.
The kill during the nightly's transaction is in
``tests/pipelines/test_nightly.py::test_a_killed_night_leaves_the_previous_result_and_the_next_run_completes``;
here the night is killed later, while it publishes after its commit.
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection

from dw_analytics.core.api import run
from dw_analytics.load.models import write_model
from dw_analytics.load.parquet import list_snapshot_versions, open_snapshot, publish_snapshot, read_snapshot
from dw_analytics.load.paths import TEMP_SUFFIX
from dw_analytics.sales.models import Destino, Pedido
from dw_analytics.sales.services import demo_data_create
from dw_analytics.warehouse.models import FactSales, PipelineRun
from tests.dbutil import ROOT, child_env
from tests.pipelines.test_star_schema import change_the_source, warehouse_state
from tests.reliability import _children

CHILD = "from tests.reliability._children import main; main()"
LOAD_ROWS = 20_000


def start_child(tmp_path: Path, *args: str) -> subprocess.Popen:
    env = child_env(
        DW_OUTPUT_DIR=str(tmp_path / "out"), DW_DATA_DIR=str(tmp_path), DW_WATERMARK_LAG_S="0", DW_PROGRESS="0"
    )
    return subprocess.Popen([sys.executable, "-c", CHILD, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)


def kill_when(child: subprocess.Popen, wanted: str, *, seen: list[str] | None = None) -> None:
    """Read the child's lines until one starts with ``wanted``, then SIGKILL it."""
    try:
        for line in child.stdout:
            if seen is not None:
                seen.append(line.strip())
            if line.startswith(wanted):
                child.send_signal(signal.SIGKILL)
                break
        else:
            pytest.fail(f"the child ended (exit {child.wait()}) before printing {wanted!r}")
    finally:
        child.kill()
        child.wait(timeout=30)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL


def destino_state() -> tuple[int, Decimal, list]:
    """Row count, total and the first rows of Destino, as the database computes them."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), sum(valor) FROM sales_destino")
        count, total = cursor.fetchone()
    first = list(Destino.objects.order_by("id_externo").values_list("id_externo", "valor", "data")[:3])
    return count, Decimal(str(total or 0)).quantize(Decimal("0.01")), first


def sqlite_is_intact() -> None:
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA integrity_check")
            assert cursor.fetchone()[0] == "ok"


# -- write_model -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode", ["replace", "upsert"])
def test_a_load_killed_mid_write_leaves_the_old_rows_and_the_next_load_completes(tmp_path, mode):
    write_model(_children.destino_frame(1_000, 1), Destino, mode="append")
    old = destino_state()

    child = start_child(tmp_path, "load_destino", str(LOAD_ROWS), mode)
    seen: list[str] = []
    kill_when(child, "BATCH 6000", seen=seen)

    assert "COMMITTED" not in seen
    assert destino_state() == old  # not one row of the killed load, none of the old rows lost
    sqlite_is_intact()

    new = _children.destino_frame(LOAD_ROWS, 2)
    result = write_model(new, Destino, mode=mode)

    expected_rows = LOAD_ROWS if mode == "replace" else LOAD_ROWS + 1_000
    assert Destino.objects.count() == expected_rows
    assert (result.n_inserted, result.n_deleted) == (LOAD_ROWS, 1_000 if mode == "replace" else 0)
    assert Destino.objects.filter(id_externo__startswith="G2-").count() == LOAD_ROWS


# -- publish_snapshot ----------------------------------------------------------


def assert_whole_version(folder: Path, version: str) -> int:
    """Every table of ``version`` reads back complete and from one iteration; return it."""
    snapshot = open_snapshot(folder, version=version)
    iteration = int(snapshot.manifest["metadata"]["iteration"])
    fact = snapshot.read("fact")
    assert len(fact) == _children.snapshot_rows(iteration)
    assert set(fact["iteration"]) == {iteration}
    assert fact["row"].tolist() == list(range(len(fact)))
    assert snapshot.read("dim")["iteration"].tolist() == [iteration]
    return iteration


@pytest.mark.parametrize("kill_point", ["WRITING", "SWITCH"], ids=["while-writing-data", "at-the-pointer-switch"])
def test_a_publish_killed_midway_leaves_one_whole_snapshot_and_the_next_publish_completes(
    tmp_path, output_dir, kill_point
):
    child = start_child(tmp_path, "publish_loop", "pointer" if kill_point == "SWITCH" else "data")
    seen: list[str] = []
    kill_when(child, f"{kill_point} 3", seen=seen)
    assert "DONE 2" in seen

    folder = output_dir / _children.SNAPSHOT_FOLDER
    current = assert_whole_version(folder, open_snapshot(folder).version)
    assert current in (2, 3) if kill_point == "SWITCH" else current == 2
    assert read_snapshot(folder, "fact")["iteration"].unique().tolist() == [current]
    # Power BI follows the `current` symlink: it names a whole version too.
    linked = (folder / "current").resolve()
    assert assert_whole_version(folder, linked.name) in (2, 3)
    versions = list_snapshot_versions(folder)
    assert [assert_whole_version(folder, v) for v in versions] in ([1, 2], [1, 2, 3])
    # What the kill left behind is hidden (".*.tmp"): no reader lists it.
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert all(name.endswith(TEMP_SUFFIX) for name in leftovers)

    result = publish_snapshot(
        {"fact": _children.snapshot_chunk(9, 0), "dim": _children.snapshot_chunk(9, 0)[["iteration"]].head(1)},
        folder,
        metadata={"iteration": "9"},
    )

    assert open_snapshot(folder).version == result.version
    assert read_snapshot(folder, "fact")["iteration"].unique().tolist() == [9]


# -- the nightly, killed after its commit while publishing -----------------------


@pytest.mark.django_db(transaction=True)
def test_a_night_killed_while_publishing_keeps_the_previous_snapshot_and_the_next_night_publishes(isolated, tmp_path):
    demo_data_create(orders=500, seed=8, end=dt.date(2026, 6, 30))
    run("nightly")
    published = open_snapshot("powerbi")
    published_fact = published.read("fact_sales")
    change_the_source()

    kill_when(start_child(tmp_path, "nightly_killed_while_publishing"), "PUBLISHING")

    # The warehouse transaction had committed: the database holds the new night, whole.
    committed = warehouse_state()
    assert FactSales.objects.count() == Pedido.objects.count()
    # ...and the files still show the previous night, whole.
    assert open_snapshot("powerbi").version == published.version
    assert read_snapshot("powerbi", "fact_sales").equals(published_fact)
    assert PipelineRun.objects.filter(status="running").count() == 1  # the killed run's record

    rerun = run("nightly")

    assert rerun.status == "succeeded"
    assert warehouse_state() == committed  # nothing new to load...
    assert open_snapshot("powerbi").version != published.version  # ...but the snapshot caught up
    fact = read_snapshot("powerbi", "fact_sales").sort_values("order_id")
    stored = list(FactSales.objects.order_by("order_id").values_list("order_id", "total"))
    assert list(zip(fact["order_id"], fact["total"], strict=True)) == stored
    killed = PipelineRun.objects.get(pipeline="nightly", error__startswith="Abandoned")
    assert killed.status == "failed"
    assert not PipelineRun.objects.filter(status="running").exists()
