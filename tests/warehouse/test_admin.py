"""The admin: run history (read-only, step table), "run now", watermark permissions, CSRF."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from dw_analytics.core.pipeline import BasePipeline
from dw_analytics.core.registry import register, unregister
from dw_analytics.warehouse import admin as warehouse_admin
from dw_analytics.warehouse.models import PipelineRun, QuarantinedRow, Watermark

T0 = dt.datetime(2026, 3, 1, 3, 0, tzinfo=dt.UTC)
RUN_NOW = "test_admin_run_now"
CHANGELIST = "/admin/warehouse/pipelinerun/"


class RunNowPipeline(BasePipeline):
    name = RUN_NOW

    def extract(self):
        return pd.DataFrame({"x": [1, 2, 3]})


@pytest.fixture
def run_now_pipeline():
    register(RunNowPipeline)
    yield RunNowPipeline
    unregister(RUN_NOW)


@pytest.fixture
def superuser_client(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")
    client.force_login(user)
    return client


@pytest.fixture
def viewer_client():
    """A staff member who may only view runs and watermarks."""
    user = get_user_model().objects.create_user("vera", password="pw-vera-123", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_pipelinerun", "view_watermark", "change_watermark"])
    )
    client = Client()
    client.force_login(user)
    return client


def make_run(pipeline: str = "nightly", *, day: int = 0, **fields) -> PipelineRun:
    values = {
        "status": "succeeded",
        "started_at": T0 + dt.timedelta(days=day),
        "finished_at": T0 + dt.timedelta(days=day, seconds=12),
        "duration_s": 12.5,
        "n_processed": 12345,
        "n_errors": 2,
        "peak_rss_mb": 256.25,
        "steps": [
            {"name": "extract", "duration_s": 4.0, "peak_rss_mb": 200.0, "n_rows": 12345},
            {"name": "load", "duration_s": 8.5, "peak_rss_mb": 256.25, "n_rows": None},
        ],
        "parameters": {"chunksize": 5000},
    }
    values.update(fields)
    return PipelineRun.objects.create(pipeline=pipeline, **values)


# -- changelist and detail --------------------------------------------------------------


@pytest.mark.django_db
def test_changelist_shows_the_run_columns_with_a_coloured_status(superuser_client):
    ok = make_run()
    failed = make_run("etl", day=1, status="failed", duration_s=None, peak_rss_mb=None)

    response = superuser_client.get(CHANGELIST)

    assert response.status_code == 200
    html = response.content.decode()
    head = html.split("<thead>")[1].split("</thead>")[0]
    assert re.findall(r'class="[^"]*column-(\w+)', head) == [
        "run_number",
        "pipeline",
        "status_badge",
        "started",
        "duration",
        "rows_processed",
        "errors",
        "peak_memory",
    ]
    assert 'class="dw-status dw-status-succeeded" style="color:#157347' in html
    assert 'class="dw-status dw-status-failed" style="color:#c0352b' in html
    row = re.search(rf"<tr>.*?/admin/warehouse/pipelinerun/{ok.pk}/change/.*?</tr>", html, re.S).group(0)
    assert (
        '<td class="field-started"><span style="white-space:nowrap">2026-03-01 00:00</span></td>' in row
    )  # America/Sao_Paulo
    assert '<td class="field-duration">12.50 s</td>' in row
    assert '<td class="field-rows_processed">12,345</td>' in row
    assert '<td class="field-peak_memory">256.2 MB</td>' in row
    failed_row = re.search(rf"<tr>.*?/admin/warehouse/pipelinerun/{failed.pk}/change/.*?</tr>", html, re.S).group(0)
    assert '<td class="field-duration">—</td>' in failed_row
    assert ">Run now: re-run the selected runs&#x27; pipelines</option>" in html


@pytest.mark.django_db
def test_changelist_filters_and_search(superuser_client):
    nightly = make_run("nightly", triggered_by="cron")
    etl = make_run("etl", day=1, status="failed", error="KeyError: 'valor'", triggered_by="maria")

    def listed(query: dict) -> set[int]:
        html = superuser_client.get(CHANGELIST, query).content.decode()
        return {int(n) for n in re.findall(r"/admin/warehouse/pipelinerun/(\d+)/change/", html)}

    assert listed({}) == {nightly.pk, etl.pk}
    assert listed({"pipeline": "etl"}) == {etl.pk}
    assert listed({"status__exact": "succeeded"}) == {nightly.pk}
    assert listed({"q": "valor"}) == {etl.pk}
    assert listed({"q": "cron"}) == {nightly.pk}
    assert listed({"started_at__year": 2026, "started_at__month": 3, "started_at__day": 2}) == {etl.pk}
    assert listed({"started_at__year": 2026, "started_at__month": 3, "started_at__day": 1}) == {nightly.pk}


@pytest.mark.django_db
def test_detail_is_read_only_with_step_table_parameters_and_traceback(superuser_client):
    run = make_run(
        status="failed",
        error="ValueError: bad",
        traceback="Traceback (most recent call last):\n  <frame>",
    )
    QuarantinedRow.objects.create(run=run, file="a.csv", line=2, value="x", reason="bad")

    response = superuser_client.get(f"/admin/warehouse/pipelinerun/{run.pk}/change/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="_save"' not in html  # read-only: no save button, no editable field
    form = html.split('id="pipelinerun_form"')[1].split("</form>")[0]
    assert re.findall(r'<input[^>]*name="([^"]+)"', form) == ["csrfmiddlewaretoken"]
    assert "<textarea" not in form and "<select" not in form
    table = re.search(r'<table class="dw-steps">.*?</table>', html, re.S).group(0)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", table)
    assert cells == [
        "<code>extract</code>",
        "4.000",
        "12,345",
        "200.0",
        "<code>load</code>",
        "8.500",
        "—",
        "256.2",
    ]
    assert '<pre style="margin:0">{\n  &quot;chunksize&quot;: 5000\n}</pre>' in html
    assert "Traceback (most recent call last):\n  &lt;frame&gt;</pre>" in html
    assert f'<a href="/runs/{run.pk}/quarantine.csv">download CSV</a>' in html
    assert superuser_client.post(f"/admin/warehouse/pipelinerun/{run.pk}/change/", {}).status_code == 403
    assert superuser_client.get("/admin/warehouse/pipelinerun/add/").status_code == 403


# -- run now ----------------------------------------------------------------------------


def post_run_now(client: Client, *runs: PipelineRun):
    return client.post(
        CHANGELIST,
        {"action": "run_now", "_selected_action": [r.pk for r in runs], "index": 0},
        follow=True,
    )


@pytest.mark.django_db
def test_run_now_in_sync_mode_runs_each_pipeline_once_as_the_requesting_user(
    superuser_client, run_now_pipeline, settings
):
    settings.DW_RUN_NOW_MODE = "sync"
    old = [make_run(RUN_NOW, day=d) for d in range(2)]
    unknown = make_run("test_admin_not_registered", day=3)

    response = post_run_now(superuser_client, *old, unknown)

    new_runs = list(PipelineRun.objects.filter(pipeline=RUN_NOW).exclude(pk__in=[r.pk for r in old]))
    assert len(new_runs) == 1
    new = new_runs[0]
    assert (new.status, new.triggered_by, new.n_processed) == ("succeeded", "root", 3)
    html = response.content.decode()
    assert f'(<a href="/runs/{new.pk}/">run #{new.pk}</a>)' in html
    assert "Not registered, not run: test_admin_not_registered." in html


@pytest.mark.django_db
def test_run_now_in_celery_mode_enqueues_the_task_with_the_username(
    superuser_client, run_now_pipeline, settings, monkeypatch
):
    from dw_analytics.celery import app  # noqa: F401  (the app the shared task binds to)
    from dw_analytics.warehouse.tasks import run_pipeline_task

    settings.DW_RUN_NOW_MODE = "celery"
    queued = []

    class FakeResult:
        id = "task-42"

    def fake_delay(name, **kwargs):
        queued.append((name, kwargs))
        return FakeResult()

    # patch the task object itself (the module attribute is a lazy proxy): nothing reaches the broker
    monkeypatch.setattr(run_pipeline_task._get_current_object(), "delay", fake_delay)
    run = make_run(RUN_NOW)

    response = post_run_now(superuser_client, run)

    assert queued == [(RUN_NOW, {"triggered_by": "root"})]
    assert PipelineRun.objects.filter(pipeline=RUN_NOW).count() == 1  # nothing ran here
    assert f"Queued {RUN_NOW} for a Celery worker (task task-42)." in response.content.decode()


@pytest.mark.django_db
def test_auto_mode_runs_synchronously_when_no_worker_answers(superuser_client, run_now_pipeline, settings, monkeypatch):
    settings.DW_RUN_NOW_MODE = "auto"
    monkeypatch.setattr(warehouse_admin, "celery_workers_available", lambda: False)
    run = make_run(RUN_NOW)

    post_run_now(superuser_client, run)

    assert PipelineRun.objects.filter(pipeline=RUN_NOW, triggered_by="root", status="succeeded").count() == 1


def test_auto_mode_picks_celery_when_a_worker_answers(settings, monkeypatch):
    settings.DW_RUN_NOW_MODE = "auto"
    monkeypatch.setattr(warehouse_admin, "celery_workers_available", lambda: True)
    assert warehouse_admin.run_now_mode() == "celery"


def test_an_unreachable_broker_means_no_worker():
    assert warehouse_admin.celery_workers_available(broker_url="redis://127.0.0.1:1/0", timeout=0.5) is False


def test_an_invalid_run_now_mode_is_a_configuration_error(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.DW_RUN_NOW_MODE = "later"
    with pytest.raises(ImproperlyConfigured, match="DW_RUN_NOW_MODE must be one of auto, celery, sync; got 'later'"):
        warehouse_admin.run_now_mode()


@pytest.mark.django_db
def test_view_only_staff_cannot_run_now(viewer_client, run_now_pipeline, settings):
    settings.DW_RUN_NOW_MODE = "sync"
    run = make_run(RUN_NOW)

    html = viewer_client.get(CHANGELIST).content.decode()
    post_run_now(viewer_client, run)

    assert '<option value="run_now"' not in html
    assert PipelineRun.objects.filter(pipeline=RUN_NOW).count() == 1


@pytest.mark.django_db
def test_admin_actions_need_the_csrf_token(run_now_pipeline, settings):
    settings.DW_RUN_NOW_MODE = "sync"
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    run = make_run(RUN_NOW)

    response = client.post(CHANGELIST, {"action": "run_now", "_selected_action": [run.pk], "index": 0})

    assert response.status_code == 403
    assert PipelineRun.objects.filter(pipeline=RUN_NOW).count() == 1


# -- watermarks ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_superusers_edit_watermarks(superuser_client):
    mark = Watermark.objects.create(name="sales.Pedido", last_id=10)

    response = superuser_client.post(
        f"/admin/warehouse/watermark/{mark.pk}/change/",
        {
            "name": "sales.Pedido",
            "last_updated_at_0": "2026-03-01",
            "last_updated_at_1": "00:00:00",
            "last_id": "7",
            "run": "",
        },
    )

    assert response.status_code == 302
    mark.refresh_from_db()
    assert mark.last_id == 7
    assert mark.last_updated_at == dt.datetime(2026, 3, 1, 3, 0, tzinfo=dt.UTC)  # entered in America/Sao_Paulo


@pytest.mark.django_db
def test_staff_non_superusers_only_view_watermarks_even_with_the_change_permission(viewer_client):
    mark = Watermark.objects.create(name="sales.Pedido", last_id=10)

    page = viewer_client.get(f"/admin/warehouse/watermark/{mark.pk}/change/")
    post = viewer_client.post(f"/admin/warehouse/watermark/{mark.pk}/change/", {"name": "x", "last_id": "1"})

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert post.status_code == 403
    assert viewer_client.get("/admin/warehouse/watermark/add/").status_code == 403
    mark.refresh_from_db()
    assert mark.last_id == 10


@pytest.mark.django_db
def test_non_staff_users_cannot_open_the_admin(client):
    user = get_user_model().objects.create_user("bob", password="pw-bob-123")
    client.force_login(user)

    response = client.get(CHANGELIST)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
