"""The run-history pages, the quarantine CSV and the SVG charts, through the Django test client."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth import get_user_model

from dw_analytics.core.pipeline import BasePipeline
from dw_analytics.core.registry import register, unregister
from dw_analytics.warehouse import views
from dw_analytics.warehouse.charts import (
    Bar,
    Point,
    bar_chart,
    compact_number,
    nice_ticks,
    time_series_chart,
)
from dw_analytics.warehouse.models import PipelineRun, QuarantinedRow

T0 = dt.datetime(2026, 3, 1, 3, 0, tzinfo=dt.UTC)
STEPS = [
    {"name": "extract", "duration_s": 1.25, "peak_rss_mb": 80.0, "n_rows": 1000},
    {"name": "transform", "duration_s": 0.5, "peak_rss_mb": 95.5, "n_rows": 990},
    {"name": "load", "duration_s": 2.0, "peak_rss_mb": 101.0, "n_rows": None},
]


def make_run(pipeline: str = "nightly", *, day: int = 0, status: str = "succeeded", **fields) -> PipelineRun:
    started = T0 + dt.timedelta(days=day)
    values = {
        "finished_at": started + dt.timedelta(seconds=10 + day),
        "duration_s": 10.0 + day,
        "n_processed": 1000 * (day + 1),
        "n_errors": 0,
        "peak_rss_mb": 100.0 + day,
        "steps": STEPS,
        "triggered_by": "cron",
    }
    values.update(fields)
    return PipelineRun.objects.create(pipeline=pipeline, status=status, started_at=started, **values)


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_user("ana", password="pw-ana-123", is_staff=True)
    client.force_login(user)
    return client


@pytest.fixture
def plain_client(client):
    user = get_user_model().objects.create_user("bob", password="pw-bob-123", is_staff=False)
    client.force_login(user)
    return client


@pytest.fixture
def run_with_quarantine():
    run = make_run("etl", n_errors=3)
    QuarantinedRow.objects.bulk_create(
        [
            QuarantinedRow(run=run, file="in.csv", line=3, column="valor", value="=1+2", reason="not a number"),
            QuarantinedRow(run=run, file="in.csv", line=7, column="data", value="31/02/2026", reason="bad date"),
            QuarantinedRow(
                run=run,
                file="in.csv",
                line=9,
                column="",
                value='-x,"y"\n',
                reason="@too many fields",
            ),
        ]
    )
    return run


def protected_urls(run_id: int) -> list[str]:
    return ["/runs/", "/runs/nightly/", f"/runs/{run_id}/", f"/runs/{run_id}/quarantine.csv"]


# -- permissions ---------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_the_login_page_from_every_page(client):
    run = make_run()
    for url in protected_urls(run.pk):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"] == f"/admin/login/?next={url}"


@pytest.mark.django_db
def test_logged_in_non_staff_users_get_403_on_every_page(plain_client):
    run = make_run()
    for url in protected_urls(run.pk):
        assert plain_client.get(url).status_code == 403, url


@pytest.mark.django_db
def test_pages_refuse_post(staff_client):
    assert staff_client.post("/runs/").status_code == 405


# -- /runs/ --------------------------------------------------------------------


def run_ids_in_table(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<a href="/runs/(\d+)/">#\1</a>', html)]


@pytest.mark.django_db
def test_run_list_shows_recent_runs_newest_first(staff_client):
    first = make_run("nightly", day=0)
    second = make_run("etl", day=1, status="failed", error="ValueError: boom")
    third = make_run("nightly", day=2)

    response = staff_client.get("/runs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert run_ids_in_table(html) == [third.pk, second.pk, first.pk]
    assert '<span class="status status-failed">failed</span>' in html
    assert "3,000" in html  # n_processed of the third run, grouped
    assert '<link rel="stylesheet" href="/static/warehouse/runs.css">' in html
    assert "https://" not in html  # no CDN


@pytest.mark.django_db
def test_run_list_filters_by_pipeline_and_by_status(staff_client):
    nightly_ok = make_run("nightly", day=0)
    nightly_failed = make_run("nightly", day=1, status="failed")
    etl_ok = make_run("etl", day=2)

    by_pipeline = staff_client.get("/runs/", {"pipeline": "nightly"}).content.decode()
    by_status = staff_client.get("/runs/", {"status": "succeeded"}).content.decode()
    both = staff_client.get("/runs/", {"pipeline": "nightly", "status": "failed"}).content.decode()
    bad_status = staff_client.get("/runs/", {"status": "bogus"}).content.decode()

    assert run_ids_in_table(by_pipeline) == [nightly_failed.pk, nightly_ok.pk]
    assert run_ids_in_table(by_status) == [etl_ok.pk, nightly_ok.pk]
    assert run_ids_in_table(both) == [nightly_failed.pk]
    assert run_ids_in_table(bad_status) == [etl_ok.pk, nightly_failed.pk, nightly_ok.pk]
    assert '<option value="nightly" selected>nightly</option>' in by_pipeline


@pytest.mark.django_db
def test_run_list_paginates_and_keeps_the_filter_in_page_links(staff_client, monkeypatch):
    monkeypatch.setattr(views, "RUNS_PER_PAGE", 2)
    runs = [make_run("nightly", day=d) for d in range(5)]
    make_run("etl", day=9)

    page1 = staff_client.get("/runs/", {"pipeline": "nightly"}).content.decode()
    page3 = staff_client.get("/runs/", {"pipeline": "nightly", "page": 3}).content.decode()

    assert run_ids_in_table(page1) == [runs[4].pk, runs[3].pk]
    assert "Page 1 of 3" in page1
    assert 'href="?pipeline=nightly&amp;page=2"' in page1
    assert run_ids_in_table(page3) == [runs[0].pk]


# -- /runs/<pipeline>/ -----------------------------------------------------------


@pytest.mark.django_db
def test_pipeline_page_charts_duration_rows_and_memory_with_one_point_per_run(staff_client):
    runs = [make_run("nightly", day=d) for d in range(4)]
    make_run("nightly", day=5, status="running", finished_at=None, duration_s=None, peak_rss_mb=None)
    make_run("etl", day=1)

    html = staff_client.get("/runs/nightly/").content.decode()

    for key in ("duration", "rows", "memory"):
        svg = re.search(rf'<svg class="chart" id="chart-{key}".*?</svg>', html, re.S).group(0)
        assert svg.count("<circle") == 4, key  # finished nightly runs only
        assert "<polyline" in svg
    duration_svg = re.search(r'<svg class="chart" id="chart-duration".*?</svg>', html, re.S).group(0)
    # tooltip of the last run: number, local start time (America/Sao_Paulo = UTC-3), value, status
    assert f"<title>Run #{runs[3].pk} · 2026-03-04 00:00 · 13.00 s · succeeded</title>" in duration_svg
    assert f'<a href="/runs/{runs[3].pk}/">' in duration_svg
    assert ">Duration (s)</text>" in duration_svg and ">Run start</text>" in duration_svg
    steps_svg = re.search(r'<svg class="chart chart-bars" id="chart-steps".*?</svg>', html, re.S).group(0)
    assert steps_svg.count('<rect class="bar"') == 3
    assert "<title>transform: 0.500 s · 990 rows · peak 95.5 MB</title>" in steps_svg
    assert "<title>load: 2.000 s · peak 101.0 MB</title>" in steps_svg


@pytest.mark.django_db
def test_pipeline_page_escapes_every_text(staff_client):
    evil = "<script>alert(1)</script>"
    make_run(
        "nightly",
        steps=[{"name": evil, "duration_s": 1.0, "peak_rss_mb": 1.0, "n_rows": 1}],
        triggered_by=evil,
    )

    html = staff_client.get("/runs/nightly/").content.decode()

    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.django_db
def test_pipeline_page_with_a_markup_name_is_escaped(staff_client):
    make_run('x"><b>bold')

    html = staff_client.get("/runs/x%22%3E%3Cb%3Ebold/").content.decode()

    assert "<b>bold" not in html
    assert "x&quot;&gt;&lt;b&gt;bold" in html


@pytest.mark.django_db
def test_unknown_pipeline_without_runs_is_404(staff_client):
    assert staff_client.get("/runs/no_such_pipeline/").status_code == 404


class NeverRunPipeline(BasePipeline):
    name = "test_views_never_run"
    freshness = dt.timedelta(hours=6)


@pytest.fixture
def never_run_pipeline():
    register(NeverRunPipeline)
    yield
    unregister(NeverRunPipeline.name)


@pytest.mark.django_db
def test_a_registered_pipeline_without_runs_shows_an_empty_page_and_is_stale(staff_client, never_run_pipeline):
    response = staff_client.get("/runs/test_views_never_run/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "No finished runs yet." in html
    assert "<svg" not in html
    assert '<span class="status status-failed">stale</span>' in html
    assert "last success never · limit 6 h 00 min" in html


@pytest.mark.django_db
def test_malformed_step_figures_do_not_break_the_page(staff_client):
    make_run(
        "nightly",
        steps=[{"name": "odd", "duration_s": "n/a", "n_rows": "12", "peak_rss_mb": None}, "junk"],
    )

    html = staff_client.get("/runs/nightly/").content.decode()

    assert "<title>odd: 0.000 s · 12 rows</title>" in html


@pytest.mark.django_db
def test_pipeline_page_limit_keeps_the_most_recent_runs(staff_client):
    runs = [make_run("nightly", day=d) for d in range(5)]

    html = staff_client.get("/runs/nightly/", {"limit": 2}).content.decode()

    svg = re.search(r'<svg class="chart" id="chart-duration".*?</svg>', html, re.S).group(0)
    assert re.findall(r'<a href="/runs/(\d+)/"><circle', svg) == [str(runs[3].pk), str(runs[4].pk)]


# -- /runs/<id>/ -----------------------------------------------------------------


@pytest.mark.django_db
def test_run_detail_shows_steps_parameters_error_and_quarantined_rows(staff_client, run_with_quarantine):
    run = run_with_quarantine
    run.status = "failed"
    run.error = "ValueError: bad <input>"
    run.traceback = 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: bad <input>'
    run.parameters = {"chunksize": 5000}
    run.save()

    html = staff_client.get(f"/runs/{run.pk}/").content.decode()

    assert '<span class="status status-failed">failed</span>' in html
    assert "ValueError: bad &lt;input&gt;" in html
    assert "Traceback (most recent call last):" in html
    assert "{\n  &quot;chunksize&quot;: 5000\n}" in html
    steps_table = re.search(r'<table class="data steps-table">.*?</table>', html, re.S).group(0)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", steps_table, re.S)
    assert cells[:4] == ["<code>extract</code>", "1.250", "1,000", "80.0"]
    assert cells[8:12] == ["<code>load</code>", "2.000", '<span class="muted">—</span>', "101.0"]
    quarantine = re.search(r'<table class="data" id="quarantine-rows">.*?</table>', html, re.S).group(0)
    assert quarantine.count("<tr>") == 4  # header + 3 rows
    assert "<code>31/02/2026</code>" in quarantine
    assert f'href="/runs/{run.pk}/quarantine.csv"' in html


@pytest.mark.django_db
def test_run_detail_of_a_missing_run_is_404(staff_client):
    assert staff_client.get("/runs/999999/").status_code == 404
    assert staff_client.get("/runs/999999/quarantine.csv").status_code == 404


# -- /runs/<id>/quarantine.csv -------------------------------------------------------


@pytest.mark.django_db
def test_quarantine_csv_streams_every_row_with_formulas_neutralised(staff_client, run_with_quarantine):
    other = make_run("etl", day=3)
    QuarantinedRow.objects.create(run=other, file="other.csv", line=1, value="x", reason="other run")

    response = staff_client.get(f"/runs/{run_with_quarantine.pk}/quarantine.csv")

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="run-{run_with_quarantine.pk}-quarantine.csv"'
    body = b"".join(response.streaming_content).decode()
    assert body == (
        "file,line,column,value,reason\r\n"
        "in.csv,3,valor,'=1+2,not a number\r\n"
        "in.csv,7,data,31/02/2026,bad date\r\n"
        'in.csv,9,,"\'-x,""y""\n",\'@too many fields\r\n'
    )


@pytest.mark.django_db
def test_quarantine_csv_of_a_clean_run_is_the_header_only(staff_client):
    run = make_run()

    response = staff_client.get(f"/runs/{run.pk}/quarantine.csv")

    assert b"".join(response.streaming_content) == b"file,line,column,value,reason\r\n"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=b", "a=b"),
        ("", ""),
        (12, 12),
        (None, None),
    ],
)
def test_csv_safe_prefixes_only_cells_a_spreadsheet_would_evaluate(value, expected):
    assert views.csv_safe(value) == expected


# -- charts ----------------------------------------------------------------------------


def test_nice_ticks_cover_the_maximum_with_round_steps():
    assert nice_ticks(9.3) == [0.0, 2.5, 5.0, 7.5, 10.0]
    assert nice_ticks(1000) == [0.0, 250.0, 500.0, 750.0, 1000.0]
    assert nice_ticks(0.03) == [0.0, 0.01, 0.02, 0.03]
    assert nice_ticks(0) == [0.0, 1.0]


def test_compact_number_labels():
    assert [compact_number(v) for v in (0, 0.5, 12, 1500, 2_500_000, 3e9)] == [
        "0",
        "0.5",
        "12",
        "1.5k",
        "2.5M",
        "3G",
    ]


def test_time_series_chart_places_points_by_time_and_value():
    points = [
        Point(T0, 0.0, "a"),
        Point(T0 + dt.timedelta(days=2), 10.0, "c", status="failed"),
        Point(T0 + dt.timedelta(days=1), 5.0, "b"),
    ]

    svg = time_series_chart(points, chart_id="c", title="T", y_label="Y")

    circles = re.findall(r'<circle class="([^"]+)" cx="([\d.]+)" cy="([\d.]+)" r="4"><title>(\w)</title>', svg)
    # plot area: x 64..620, y 14..194; ticks 0..10
    assert circles == [
        ("point", "64.0", "194.0", "a"),
        ("point", "342.0", "104.0", "b"),
        ("point point-failed", "620.0", "14.0", "c"),
    ]
    assert '<polyline class="series" points="64.0,194.0 342.0,104.0 620.0,14.0"/>' in svg


def test_a_single_point_is_centred_and_empty_input_says_so():
    single = time_series_chart([Point(T0, 2.0, "only")], chart_id="c", title="T", y_label="Y")
    empty = time_series_chart([], chart_id="c", title="T", y_label="Y")

    assert 'cx="342.0"' in single and "<polyline" not in single
    assert empty == '<p class="chart-empty" id="c">No runs to chart yet.</p>'


def test_bar_chart_escapes_labels_and_tooltips():
    svg = bar_chart([Bar("<i>", 1.0, 'a "quote" & <tag>')], chart_id="s", title="<t>", x_label="X")

    assert "<i>" not in svg and "&lt;i&gt;" in svg
    assert "<title>a &quot;quote&quot; &amp; &lt;tag&gt;</title>" in svg
    assert 'aria-label="&lt;t&gt;"' in svg
