"""A real Celery worker, on the real Redis broker, runs pipelines and records them."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import uuid
from decimal import Decimal

import pytest
from celery.exceptions import Retry
from django.db import OperationalError

from dw_analytics.celery import app
from dw_analytics.sales.models import Destino, FonteExterna
from dw_analytics.warehouse import tasks
from dw_analytics.warehouse.models import PipelineRun
from tests.dbutil import ROOT, child_env


@pytest.fixture
def worker():
    """A solo worker consuming a queue of its own, so nothing else interferes."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    process = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "dw_analytics.celery", "worker", "--pool=solo",
            "-Q", queue, "--without-mingle", "--without-gossip", "--without-heartbeat", "-l", "warning",
        ],
        cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield queue
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0].decode(errors="replace")
        if process.returncode not in (0, -15):
            print(output)


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_pipeline_and_records_the_run(worker):
    FonteExterna.objects.create(id_externo="W1", valor=Decimal("5.00"), data=dt.datetime(2026, 5, 1, tzinfo=dt.UTC))

    result = tasks.run_pipeline_task.apply_async(args=["etl"], kwargs={"triggered_by": "celery-test"}, queue=worker)
    log = result.get(timeout=90)

    assert log["status"] == "succeeded" and log["n_processed"] == 1
    record = PipelineRun.objects.get(pk=log["run_id"])
    assert (record.pipeline, record.status, record.triggered_by) == ("etl", "succeeded", "celery-test")
    assert Destino.objects.get().valor == Decimal("5.50")


@pytest.mark.django_db
def test_transient_database_errors_are_retried_with_backoff(monkeypatch):
    def lost_connection(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(tasks, "run", lost_connection)
    retries = []
    monkeypatch.setattr(tasks.run_pipeline_task, "retry", lambda **kw: retries.append(kw) or Retry())

    with pytest.raises(Retry):
        tasks.run_pipeline_task.run("etl")
    assert retries[0]["countdown"] == 10


@pytest.mark.django_db
def test_data_errors_are_not_retried(monkeypatch):
    def bad_data(*args, **kwargs):
        raise ValueError("decimal overflow in column total")

    monkeypatch.setattr(tasks, "run", bad_data)
    monkeypatch.setattr(tasks.run_pipeline_task, "retry", lambda **kw: pytest.fail("must not retry"))

    with pytest.raises(ValueError, match="decimal overflow"):
        tasks.run_pipeline_task.run("etl")


@pytest.mark.django_db
def test_the_nightly_refresh_is_scheduled_at_two_in_sao_paulo():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="dw_analytics.run_pipeline")
    assert task.args == '["nightly"]'
    assert (task.crontab.minute, task.crontab.hour, str(task.crontab.timezone)) == ("0", "2", "America/Sao_Paulo")
    assert app.conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"
