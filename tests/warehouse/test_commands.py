"""The management commands, through call_command, asserting their output."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from dw_analytics.core.pipeline import BasePipeline
from dw_analytics.core.registry import register, unregister
from dw_analytics.sales.models import Categoria, FonteExterna, Pedido
from dw_analytics.warehouse.models import PipelineRun


def call(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


class Exploding(BasePipeline):
    name = "test_exploding"

    def load(self, data):
        raise ValueError("no space left on device")


@pytest.fixture
def exploding():
    register(Exploding)
    yield
    unregister("test_exploding")


def test_list_pipelines_shows_the_seed_pipelines_with_their_parameters():
    out = call("list_pipelines")
    lines = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert {"analytics", "etl"} <= set(lines)
    assert "chunksize" in lines["etl"]
    assert "Destino" in lines["etl"]


@pytest.mark.django_db
def test_run_pipeline_prints_the_step_table():
    FonteExterna.objects.create(id_externo="A", valor=Decimal("1.00"), data=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))

    out = call("run_pipeline", "etl")

    assert out.startswith("etl run ")
    assert "succeeded" in out and "1 processed" in out and "1 inserted" in out
    assert [line.split()[0] for line in out.splitlines()[3:6]] == ["extract", "transform", "load"]


@pytest.mark.django_db
def test_run_pipeline_json_is_the_run_log():
    out = call("run_pipeline", "etl", "--json")

    log = json.loads(out)
    assert log["pipeline"] == "etl" and log["status"] == "succeeded"
    assert {"started_at", "finished_at", "n_processed", "n_errors", "error", "peak_rss_mb", "steps"} <= set(log)
    assert log["run_id"] == PipelineRun.objects.get().pk


@pytest.mark.django_db
def test_run_pipeline_fails_with_the_error_when_the_pipeline_fails(exploding):
    with pytest.raises(CommandError, match=r"pipeline 'test_exploding' failed \(run \d+\): ValueError: no space left"):
        call("run_pipeline", "test_exploding")
    assert PipelineRun.objects.get().status == "failed"


@pytest.mark.django_db
def test_run_pipeline_names_the_valid_pipelines_and_parameters():
    with pytest.raises(CommandError, match="unknown pipeline 'nope'; valid pipelines: .*analytics.*etl"):
        call("run_pipeline", "nope")
    with pytest.raises(CommandError, match="does not accept parameter.*colour"):
        call("run_pipeline", "etl", "--param", "colour=red")
    with pytest.raises(CommandError, match="--param expects KEY=VALUE"):
        call("run_pipeline", "etl", "--param", "chunksize")


@pytest.mark.django_db
def test_pipeline_history_lists_runs_newest_first_and_filters(exploding):
    assert call("pipeline_history") == "No runs recorded yet.\n"
    call("run_pipeline", "etl")
    with pytest.raises(CommandError):
        call("run_pipeline", "test_exploding")

    out = call("pipeline_history")
    rows = out.splitlines()[2:]
    assert [r.split()[1:3] for r in rows] == [["test_exploding", "failed"], ["etl", "succeeded"]]
    assert "ValueError: no space left on device" in rows[0]

    only_etl = call("pipeline_history", "--pipeline", "etl", "--limit", "5").splitlines()[2:]
    assert len(only_etl) == 1 and "etl" in only_etl[0]
    with pytest.raises(CommandError, match="--limit must be >= 1"):
        call("pipeline_history", "--limit", "0")


@pytest.mark.django_db
def test_generate_demo_data_is_deterministic_and_safe_to_run_twice():
    out = call("generate_demo_data", "--orders", "3000", "--seed", "5", "--end", "2026-06-30")
    assert "3,000 pedidos" in out
    first = list(Pedido.objects.order_by("id").values_list("id", "produto_id", "total", "criado_em")[:50])

    again = call("generate_demo_data", "--orders", "3000", "--seed", "5", "--end", "2026-06-30")
    assert "already present" in again
    assert Pedido.objects.count() == 3000

    call("generate_demo_data", "--orders", "3000", "--seed", "5", "--end", "2026-06-30", "--reset")
    assert list(Pedido.objects.order_by("id").values_list("id", "produto_id", "total", "criado_em")[:50]) == first
    assert Categoria.objects.count() == 14
