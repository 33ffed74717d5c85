"""Run-history pages (staff only) and the public freshness health check.

Pages are server-rendered; charts are inline SVG built by
:mod:`dw_analytics.warehouse.charts`. Everything here needs a staff login
except ``/health/``, which exposes only per-pipeline freshness for uptime
monitors.
"""

from __future__ import annotations

import csv
import functools
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from dw_analytics.core.registry import all_pipelines
from dw_analytics.warehouse.charts import Bar, Point, bar_chart, time_series_chart
from dw_analytics.warehouse.freshness import all_fresh, format_age, pipelines_freshness
from dw_analytics.warehouse.models import PipelineRun, QuarantinedRow

RUNS_PER_PAGE = 50
QUARANTINE_PREVIEW_ROWS = 100
#: runs drawn on a pipeline's charts (the most recent ones)
CHART_RUNS_DEFAULT = 60
CHART_RUNS_MAX = 500
#: a CSV cell starting with one of these is a formula for Excel / LibreOffice / Sheets
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
QUARANTINE_CSV_HEADER = ("file", "line", "column", "value", "reason")


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous users go to the login page; logged-in non-staff users get 403.

    Example:
        >>> @staff_required
        ... def page(request): ...
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied("The run history is for staff members only.")
        return view(request, *args, **kwargs)

    return wrapper


def known_pipelines() -> list[str]:
    """Pipeline names with runs or registered, sorted (for filters and navigation)."""
    with_runs = PipelineRun.objects.order_by().values_list("pipeline", flat=True).distinct()
    return sorted(set(with_runs) | set(all_pipelines()))


@require_safe
@staff_required
def run_list(request: HttpRequest) -> HttpResponse:
    """``/runs/``: recent runs, newest first, filtered by ``?pipeline=`` and ``?status=``."""
    runs = PipelineRun.objects.defer("steps", "parameters", "traceback")
    pipeline = request.GET.get("pipeline", "").strip()
    status = request.GET.get("status", "").strip()
    if pipeline:
        runs = runs.filter(pipeline=pipeline)
    if status in PipelineRun.Status.values:
        runs = runs.filter(status=status)
    else:
        status = ""
    page = Paginator(runs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    query = _query_string(pipeline=pipeline, status=status)
    return render(
        request,
        "warehouse/run_list.html",
        {
            "page": page,
            "runs": page.object_list,
            "pipelines": known_pipelines(),
            "statuses": PipelineRun.Status.values,
            "selected_pipeline": pipeline,
            "selected_status": status,
            "filter_query": query,
            "nav": "all",
        },
    )


@require_safe
@staff_required
def pipeline_runs(request: HttpRequest, pipeline: str) -> HttpResponse:
    """``/runs/<pipeline>/``: duration, rows and memory over time; the last run's steps."""
    limit = _bounded_int(request.GET.get("limit"), default=CHART_RUNS_DEFAULT, low=2, high=CHART_RUNS_MAX)
    recent = list(
        PipelineRun.objects.filter(pipeline=pipeline)
        .exclude(status=PipelineRun.Status.RUNNING)
        .defer("parameters", "traceback")[:limit]
    )
    running = PipelineRun.objects.filter(pipeline=pipeline, status=PipelineRun.Status.RUNNING).first()
    if not recent and running is None and pipeline not in all_pipelines():
        raise Http404(f"No pipeline named {pipeline!r} and no runs recorded under that name.")
    recent.reverse()  # oldest first, as the charts read
    last = recent[-1] if recent else None
    freshness = next((f for f in pipelines_freshness() if f.pipeline == pipeline), None)
    return render(
        request,
        "warehouse/pipeline_runs.html",
        {
            "pipeline": pipeline,
            "registered": pipeline in all_pipelines(),
            "freshness": freshness,
            "freshness_age": format_age(freshness.age) if freshness else "",
            "freshness_limit": format_age(freshness.max_age) if freshness else "",
            "runs": recent[::-1],
            "n_runs": len(recent),
            "limit": limit,
            "more_limit": min(limit * 4, CHART_RUNS_MAX),
            "running": running,
            "last": last,
            "charts": _pipeline_charts(recent),
            "steps_chart": _steps_chart(last) if last else None,
            "pipelines": known_pipelines(),
            "nav": pipeline,
        },
    )


@require_safe
@staff_required
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    """``/runs/<id>/``: one run with its steps, parameters, error and quarantined rows."""
    run = get_object_or_404(PipelineRun, pk=run_id)
    quarantined = run.quarantined_rows.order_by("id")
    n_quarantined = quarantined.count()
    return render(
        request,
        "warehouse/run_detail.html",
        {
            "run": run,
            "steps": run.steps or [],
            "quarantined": quarantined[:QUARANTINE_PREVIEW_ROWS],
            "n_quarantined": n_quarantined,
            "preview_rows": QUARANTINE_PREVIEW_ROWS,
            "steps_chart": _steps_chart(run),
            "parameters_json": json.dumps(run.parameters, indent=2, sort_keys=True, default=str),
            "pipelines": known_pipelines(),
            "nav": run.pipeline,
        },
    )


@require_safe
@staff_required
def run_quarantine_csv(request: HttpRequest, run_id: int) -> StreamingHttpResponse:
    """``/runs/<id>/quarantine.csv``: every quarantined row of a run, streamed.

    Cells that a spreadsheet would read as a formula are prefixed with a
    single quote (see :func:`csv_safe`).
    """
    run = get_object_or_404(PipelineRun.objects.only("id"), pk=run_id)
    rows = (
        QuarantinedRow.objects.filter(run=run)
        .order_by("id")
        .values_list(*QUARANTINE_CSV_HEADER)
        .iterator(chunk_size=2000)
    )
    response = StreamingHttpResponse(_csv_lines([QUARANTINE_CSV_HEADER], rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-quarantine.csv"'
    return response


@never_cache
@require_safe
def health(request: HttpRequest) -> JsonResponse:
    """``/health/``: per monitored pipeline, the last success and whether it is fresh.

    HTTP 200 when every monitored pipeline is fresh, 503 otherwise. No login;
    no row counts, errors or parameters.
    """
    verdicts = pipelines_freshness()
    healthy = all_fresh(verdicts)
    body = {
        "status": "ok" if healthy else "stale",
        "checked_at": timezone.now().isoformat(),
        "pipelines": {
            v.pipeline: {
                "fresh": v.is_fresh,
                "last_success_at": v.last_success_at.isoformat() if v.last_success_at else None,
                "max_age_s": int(v.max_age.total_seconds()),
            }
            for v in verdicts
        },
    }
    return JsonResponse(body, status=200 if healthy else 503)


def csv_safe(value: object) -> object:
    """Neutralise spreadsheet formula injection in one CSV cell (OWASP advice).

    Text starting with ``= + - @``, a tab or a carriage return gets a leading
    single quote; other values pass unchanged.

    Example:
        >>> csv_safe("=HYPERLINK(1)"), csv_safe("-3"), csv_safe("ok"), csv_safe(7)
        ("'=HYPERLINK(1)", "'-3", 'ok', 7)
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class _Echo:
    """A file-like object whose ``write`` returns the text, for ``csv.writer`` streaming."""

    def write(self, text: str) -> str:
        return text


def _csv_lines(*row_sources: Iterable[Iterable[object]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    for rows in row_sources:
        for row in rows:
            yield writer.writerow([csv_safe(value) for value in row])


def _pipeline_charts(runs: list[PipelineRun]) -> list[dict[str, Any]]:
    specs = [
        ("duration", "Duration", "Duration (s)", "duration_s", lambda r: f"{r.duration_s:,.2f} s"),
        (
            "rows",
            "Rows processed",
            "Rows processed",
            "n_processed",
            lambda r: f"{r.n_processed:,} rows",
        ),
        (
            "memory",
            "Peak memory",
            "Peak memory (MB)",
            "peak_rss_mb",
            lambda r: f"{r.peak_rss_mb:,.1f} MB",
        ),
    ]
    charts = []
    for key, title, y_label, field, describe in specs:
        points = [
            Point(
                x=run.started_at,
                y=float(getattr(run, field)),
                tooltip=f"Run #{run.pk} · {_local(run.started_at)} · {describe(run)} · {run.status}",
                href=reverse("warehouse:run-detail", args=[run.pk]),
                status=run.status,
            )
            for run in runs
            if getattr(run, field) is not None
        ]
        charts.append(
            {
                "key": key,
                "title": title,
                "svg": time_series_chart(points, chart_id=f"chart-{key}", title=title, y_label=y_label),
            }
        )
    return charts


def _steps_chart(run: PipelineRun) -> Any:
    bars = []
    for step in run.steps or []:
        if not isinstance(step, dict):
            continue
        name = str(step.get("name", "?"))
        seconds = _as_float(step.get("duration_s"))
        details = [f"{name}: {seconds:,.3f} s"]
        if step.get("n_rows") is not None:
            details.append(f"{_as_float(step['n_rows']):,.0f} rows")
        if step.get("peak_rss_mb") is not None:
            details.append(f"peak {_as_float(step['peak_rss_mb']):,.1f} MB")
        bars.append(Bar(label=name, value=seconds, tooltip=" · ".join(details)))
    return bar_chart(bars, chart_id="chart-steps", title=f"Steps of run #{run.pk}", x_label="Duration (s)")


def _as_float(value: Any) -> float:
    """A step figure from the JSON log as a number (0 when missing or malformed)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _local(moment: Any) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


def _bounded_int(text: str | None, *, default: int, low: int, high: int) -> int:
    try:
        return min(max(int(text), low), high) if text else default
    except ValueError:
        return default


def _query_string(**params: str) -> str:
    from urllib.parse import urlencode

    return urlencode({k: v for k, v in params.items() if v})


__all__ = [
    "csv_safe",
    "health",
    "known_pipelines",
    "pipeline_runs",
    "run_detail",
    "run_list",
    "run_quarantine_csv",
    "staff_required",
]
