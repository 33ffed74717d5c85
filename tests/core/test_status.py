"""Live status of a running pipeline, seen from another process, and cancellation."""

from __future__ import annotations

import subprocess
import sys
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from dw_analytics.core.status import live_status
from dw_analytics.sales.models import Categoria
from dw_analytics.warehouse.models import PipelineRun
from tests.dbutil import ROOT, child_env


def wait_for(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def progress_of(run: PipelineRun) -> dict:
    run.refresh_from_db()
    return live_status(run)


@pytest.mark.django_db(transaction=True)
def test_a_running_pipeline_shows_its_progress_and_stops_when_cancelled():
    script = "import django; django.setup(); import tests.core.slow_pipeline; from dw_analytics.core.api import run; run('test_slow', raise_errors=False)"
    child = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=child_env())
    try:
        run = wait_for(lambda: PipelineRun.objects.filter(pipeline="test_slow").first())
        live = wait_for(lambda: progress_of(run) if progress_of(run)["rows_done"] >= 30 else None)
        assert live["current_step"] == "extract"
        assert live["rows_per_s"] > 0 and live["rss_mb"] > 0

        out = StringIO()
        call_command("pipeline_status", stdout=out)
        line = next(row for row in out.getvalue().splitlines() if row.split()[0] == str(run.pk))
        assert "test_slow" in line and "extract" in line

        call_command("cancel_run", str(run.pk), stdout=StringIO())
        assert child.wait(timeout=60) == 0
    finally:
        child.kill()
        child.wait()

    run.refresh_from_db()
    assert run.status == "cancelled"
    assert run.error.startswith("RunCancelled: run") and 0 < run.n_processed < 6000
    assert not Categoria.objects.exists()  # everything written was rolled back
    with pytest.raises(CommandError, match="is not running: it cancelled"):
        call_command("cancel_run", str(run.pk))


@pytest.mark.django_db
def test_pipeline_status_says_when_nothing_runs_and_cancel_run_checks_the_id():
    out = StringIO()
    call_command("pipeline_status", stdout=out)
    assert out.getvalue() == "No pipeline is running.\n"
    with pytest.raises(CommandError, match="no run with id 999"):
        call_command("cancel_run", "999")
