"""Freshness: the verdicts, the public /health/ endpoint and ``manage.py check_freshness``."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, ManagementUtility, call_command
from django.utils import timezone

from dw_analytics.core.pipeline import BasePipeline
from dw_analytics.core.registry import all_pipelines, register, unregister
from dw_analytics.warehouse.freshness import Freshness, all_fresh, format_age, pipelines_freshness
from dw_analytics.warehouse.models import PipelineRun

DAILY = "test_fresh_daily"
HOURLY = "test_fresh_hourly"


class DailyPipeline(BasePipeline):
    name = DAILY
    freshness = dt.timedelta(hours=24)


class HourlyPipeline(BasePipeline):
    name = HOURLY
    freshness = dt.timedelta(hours=1)


class UnmonitoredPipeline(BasePipeline):
    name = "test_fresh_unmonitored"
    freshness = None


@pytest.fixture
def monitored():
    """Two monitored test pipelines and one without a freshness limit."""
    for cls in (DailyPipeline, HourlyPipeline, UnmonitoredPipeline):
        register(cls)
    yield
    for cls in (DailyPipeline, HourlyPipeline, UnmonitoredPipeline):
        unregister(cls.name)


def succeed(pipeline: str, *, finished_ago: dt.timedelta, status: str = "succeeded") -> PipelineRun:
    finished = timezone.now() - finished_ago
    return PipelineRun.objects.create(
        pipeline=pipeline,
        status=status,
        started_at=finished - dt.timedelta(minutes=5),
        finished_at=finished,
        duration_s=300.0,
        n_processed=123,
        error="" if status == "succeeded" else "ValueError: secret detail",
    )


def make_other_monitored_pipelines_fresh() -> None:
    """The project's own monitored pipelines (e.g. nightly) must not decide these tests."""
    for name, cls in all_pipelines().items():
        if cls.freshness is not None and name not in (DAILY, HOURLY):
            succeed(name, finished_ago=dt.timedelta(0))


# -- verdicts --------------------------------------------------------------------


@pytest.mark.django_db
def test_verdicts_use_the_last_successful_run_of_monitored_pipelines_only(monitored):
    now = timezone.now()
    recent = succeed(DAILY, finished_ago=dt.timedelta(hours=30))
    recent = succeed(DAILY, finished_ago=dt.timedelta(hours=2))
    succeed(DAILY, finished_ago=dt.timedelta(minutes=1), status="failed")  # failures do not count
    succeed("test_fresh_unmonitored", finished_ago=dt.timedelta(days=90))

    verdicts = {v.pipeline: v for v in pipelines_freshness(now=now)}

    assert "test_fresh_unmonitored" not in verdicts
    assert verdicts[DAILY] == Freshness(DAILY, dt.timedelta(hours=24), recent.finished_at, now)
    assert verdicts[DAILY].is_fresh
    assert verdicts[DAILY].age == now - recent.finished_at
    assert verdicts[HOURLY].last_success_at is None
    assert not verdicts[HOURLY].is_fresh  # never succeeded: stale


@pytest.mark.django_db
def test_a_run_exactly_at_the_limit_is_fresh_and_one_second_later_stale(monitored):
    run = succeed(HOURLY, finished_ago=dt.timedelta(0))

    at_limit = pipelines_freshness(now=run.finished_at + dt.timedelta(hours=1))
    past_limit = pipelines_freshness(now=run.finished_at + dt.timedelta(hours=1, seconds=1))

    assert {v.pipeline: v.is_fresh for v in at_limit}[HOURLY] is True
    assert {v.pipeline: v.is_fresh for v in past_limit}[HOURLY] is False


@pytest.mark.django_db
def test_a_run_without_finish_time_counts_from_its_start(monitored):
    started = timezone.now() - dt.timedelta(minutes=10)
    PipelineRun.objects.create(pipeline=HOURLY, status="succeeded", started_at=started)

    verdict = {v.pipeline: v for v in pipelines_freshness()}[HOURLY]

    assert verdict.last_success_at == started


def test_all_fresh_and_format_age():
    now = timezone.now()
    fresh = Freshness("a", dt.timedelta(hours=1), now, now)
    stale = Freshness("b", dt.timedelta(hours=1), None, now)
    assert all_fresh([]) and all_fresh([fresh]) and not all_fresh([fresh, stale])
    assert [format_age(x) for x in (None, dt.timedelta(minutes=7), dt.timedelta(hours=26, minutes=3))] == [
        "never",
        "7 min",
        "1 d 2 h",
    ]


# -- /health/ ----------------------------------------------------------------------


@pytest.mark.django_db
def test_health_is_200_without_login_when_every_monitored_pipeline_is_fresh(client, monitored):
    daily = succeed(DAILY, finished_ago=dt.timedelta(hours=23))
    hourly = succeed(HOURLY, finished_ago=dt.timedelta(minutes=30))
    make_other_monitored_pipelines_fresh()

    response = client.get("/health/")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["pipelines"][DAILY] == {
        "fresh": True,
        "last_success_at": daily.finished_at.isoformat(),
        "max_age_s": 86400,
    }
    assert body["pipelines"][HOURLY] == {
        "fresh": True,
        "last_success_at": hourly.finished_at.isoformat(),
        "max_age_s": 3600,
    }
    assert "test_fresh_unmonitored" not in body["pipelines"]
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_health_is_503_when_one_pipeline_is_stale_and_exposes_no_data(client, monitored):
    succeed(DAILY, finished_ago=dt.timedelta(hours=1))
    hourly = succeed(HOURLY, finished_ago=dt.timedelta(hours=3))
    succeed(HOURLY, finished_ago=dt.timedelta(minutes=1), status="failed")
    make_other_monitored_pipelines_fresh()

    response = client.get("/health/")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "stale"
    assert body["pipelines"][DAILY]["fresh"] is True
    assert body["pipelines"][HOURLY] == {
        "fresh": False,
        "last_success_at": hourly.finished_at.isoformat(),
        "max_age_s": 3600,
    }
    # freshness only: no counts, errors or parameters
    assert set(body) == {"status", "checked_at", "pipelines"}
    assert all(set(entry) == {"fresh", "last_success_at", "max_age_s"} for entry in body["pipelines"].values())
    assert "secret detail" not in response.content.decode()


@pytest.mark.django_db
def test_health_is_503_when_a_monitored_pipeline_never_succeeded(client, monitored):
    succeed(DAILY, finished_ago=dt.timedelta(hours=1))
    make_other_monitored_pipelines_fresh()

    response = client.get("/health/")

    assert response.status_code == 503
    assert response.json()["pipelines"][HOURLY] == {
        "fresh": False,
        "last_success_at": None,
        "max_age_s": 3600,
    }


@pytest.mark.django_db
def test_health_accepts_only_safe_methods(client):
    assert client.post("/health/").status_code == 405


# -- manage.py check_freshness --------------------------------------------------------


@pytest.mark.django_db
def test_check_freshness_prints_a_table_and_succeeds_when_fresh(monitored):
    daily = succeed(DAILY, finished_ago=dt.timedelta(hours=2, minutes=5))
    succeed(HOURLY, finished_ago=dt.timedelta(minutes=10))
    make_other_monitored_pipelines_fresh()
    out = StringIO()

    call_command("check_freshness", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["pipeline", "state", "last", "success", "age", "limit"]
    row = next(line for line in lines if line.startswith(DAILY))
    local = timezone.localtime(daily.finished_at).strftime("%Y-%m-%d %H:%M:%S")
    assert row.split() == [
        DAILY,
        "fresh",
        *local.split(),
        "2",
        "h",
        "05",
        "min",
        "1",
        "d",
        "0",
        "h",
    ]
    assert lines[-1] == f"All {len(lines) - 3} monitored pipeline(s) are fresh."


@pytest.mark.django_db
def test_check_freshness_fails_with_exit_code_2_when_stale(monitored):
    succeed(DAILY, finished_ago=dt.timedelta(hours=25))
    succeed(HOURLY, finished_ago=dt.timedelta(minutes=10))
    make_other_monitored_pipelines_fresh()
    out = StringIO()

    with pytest.raises(CommandError) as raised:
        call_command("check_freshness", stdout=out)

    assert raised.value.returncode == 2
    assert str(raised.value) == f"stale pipeline(s): {DAILY}"
    assert next(line for line in out.getvalue().splitlines() if line.startswith(DAILY)).split()[1] == "STALE"


@pytest.mark.django_db
def test_check_freshness_exits_the_process_with_status_2_from_the_command_line(monitored, capsys):
    make_other_monitored_pipelines_fresh()  # DAILY and HOURLY never ran: stale

    with pytest.raises(SystemExit) as exited:
        ManagementUtility(["manage.py", "check_freshness"]).execute()

    assert exited.value.code == 2
    assert f"CommandError: stale pipeline(s): {DAILY}, {HOURLY}" in capsys.readouterr().err
