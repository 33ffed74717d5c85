"""Django admin for the run history (read-only), watermarks (superusers edit) and "run now".

"Run now" re-runs the pipelines of the selected runs, with their default
parameters, as the requesting user (``triggered_by`` = username). Where it
runs is decided by the setting ``DW_RUN_NOW_MODE``:

- ``"celery"``: enqueue ``run_pipeline_task`` for a worker;
- ``"sync"``: run inside the admin request (small pipelines, no worker);
- ``"auto"`` (default): Celery when the broker answers and a worker replies
  to ``app.control.ping`` within a second, otherwise synchronously.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from dw_analytics.core.exceptions import DWError
from dw_analytics.core.registry import all_pipelines
from dw_analytics.warehouse.models import PipelineRun, Watermark

logger = logging.getLogger("dw_analytics.admin")

RUN_NOW_MODES = ("auto", "celery", "sync")
#: seconds to wait for the broker, then for a worker's ping reply
CELERY_PROBE_TIMEOUT_S = 1.0

STATUS_COLOURS = {
    PipelineRun.Status.SUCCEEDED: ("#157347", "#e3f4ea"),
    PipelineRun.Status.FAILED: ("#c0352b", "#fbe7e5"),
    PipelineRun.Status.RUNNING: ("#9a6400", "#fdf1d8"),
    PipelineRun.Status.CANCELLED: ("#55595c", "#ececec"),
}


def celery_workers_available(*, timeout: float = CELERY_PROBE_TIMEOUT_S, broker_url: str | None = None) -> bool:
    """True when the Celery broker accepts a connection and at least one worker answers a ping.

    Every failure (no broker, wrong URL, no worker) means False: the caller
    then runs the pipeline itself instead of queueing work nobody will take.

    Example:
        >>> celery_workers_available(broker_url="redis://127.0.0.1:1/0")
        False
    """
    from dw_analytics.celery import app  # configures the app the tasks are bound to

    try:
        with app.connection_for_write(broker_url) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
            return bool(app.control.ping(timeout=timeout, connection=connection))
    except Exception as exc:  # any broker/transport error: no usable worker
        logger.info("Celery is not usable for 'run now' (%s: %s)", type(exc).__name__, exc)
        return False


def run_now_mode() -> str:
    """Where "run now" runs: ``"celery"`` or ``"sync"``, from ``settings.DW_RUN_NOW_MODE``.

    Raises:
        ImproperlyConfigured: the setting is not one of ``auto``, ``celery``, ``sync``.

    Example:
        >>> run_now_mode()  # doctest: +SKIP
        'sync'
    """
    mode = getattr(settings, "DW_RUN_NOW_MODE", "auto")
    if mode not in RUN_NOW_MODES:
        raise ImproperlyConfigured(f"DW_RUN_NOW_MODE must be one of {', '.join(RUN_NOW_MODES)}; got {mode!r}")
    if mode == "auto":
        return "celery" if celery_workers_available() else "sync"
    return mode


@admin.register(PipelineRun)
class PipelineRunAdmin(admin.ModelAdmin):
    """The run history: searchable, filterable, read-only; "run now" re-runs a pipeline."""

    list_display = [
        "run_number",
        "pipeline",
        "status_badge",
        "started",
        "duration",
        "rows_processed",
        "errors",
        "peak_memory",
    ]
    list_display_links = ["run_number", "pipeline"]
    list_filter = ["pipeline", "status", ("started_at", admin.DateFieldListFilter)]
    date_hierarchy = "started_at"
    search_fields = ["pipeline", "error", "triggered_by"]
    list_per_page = 50
    show_full_result_count = False
    actions = ["run_now"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "pipeline",
                    "status_badge",
                    "started_at",
                    "finished_at",
                    "duration",
                    "triggered_by",
                ]
            },
        ),
        (
            "Rows and memory",
            {
                "fields": [
                    "n_processed",
                    "n_errors",
                    "n_inserted",
                    "n_updated",
                    "n_deleted",
                    "peak_memory",
                    "quarantine",
                ]
            },
        ),
        ("Steps", {"fields": ["steps_table"]}),
        ("Parameters", {"fields": ["parameters_json"]}),
        ("Error", {"fields": ["error", "traceback_text"]}),
    ]
    readonly_fields = [
        "pipeline",
        "status_badge",
        "started_at",
        "finished_at",
        "duration",
        "triggered_by",
        "n_processed",
        "n_errors",
        "n_inserted",
        "n_updated",
        "n_deleted",
        "peak_memory",
        "quarantine",
        "steps_table",
        "parameters_json",
        "error",
        "traceback_text",
    ]

    class Media:
        css = {"all": ["warehouse/admin.css"]}

    def view_on_site(self, obj: PipelineRun) -> str:
        return reverse("warehouse:run-detail", args=[obj.pk])

    # Runs are written by the pipelines only: the admin views them (and may delete them).
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: PipelineRun | None = None) -> bool:
        return False

    def has_run_permission(self, request: HttpRequest) -> bool:
        """Who may use "run now": users allowed to change runs (superusers, or granted)."""
        return request.user.has_perm("warehouse.change_pipelinerun")

    # -- list columns ------------------------------------------------------
    @admin.display(description="run")
    def run_number(self, obj: PipelineRun) -> str:
        return f"#{obj.pk}"

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: PipelineRun) -> SafeString:
        colour, background = STATUS_COLOURS.get(obj.status, ("#444", "#eee"))
        return format_html(
            '<span class="dw-status dw-status-{}" style="color:{};background:{};padding:1px 8px;'
            'border-radius:9px;font-weight:600">{}</span>',
            obj.status,
            colour,
            background,
            obj.get_status_display(),
        )

    @admin.display(description="started", ordering="started_at")
    def started(self, obj: PipelineRun) -> SafeString:
        local = timezone.localtime(obj.started_at).strftime("%Y-%m-%d %H:%M")
        return format_html('<span style="white-space:nowrap">{}</span>', local)

    @admin.display(description="duration", ordering="duration_s")
    def duration(self, obj: PipelineRun) -> str:
        return "—" if obj.duration_s is None else f"{obj.duration_s:,.2f} s"

    @admin.display(description="processed", ordering="n_processed")
    def rows_processed(self, obj: PipelineRun) -> str:
        return f"{obj.n_processed:,}"

    @admin.display(description="errors", ordering="n_errors")
    def errors(self, obj: PipelineRun) -> str:
        return f"{obj.n_errors:,}"

    @admin.display(description="peak memory", ordering="peak_rss_mb")
    def peak_memory(self, obj: PipelineRun) -> str:
        return "—" if obj.peak_rss_mb is None else f"{obj.peak_rss_mb:,.1f} MB"

    # -- detail fields -----------------------------------------------------
    @admin.display(description="quarantined rows")
    def quarantine(self, obj: PipelineRun) -> SafeString:
        count = obj.quarantined_rows.count()
        if not count:
            return format_html("{}", "none")
        return format_html(
            '{} — <a href="{}#quarantine">view</a> · <a href="{}">download CSV</a>',
            f"{count:,}",
            reverse("warehouse:run-detail", args=[obj.pk]),
            reverse("warehouse:run-quarantine-csv", args=[obj.pk]),
        )

    @admin.display(description="steps")
    def steps_table(self, obj: PipelineRun) -> SafeString:
        steps = [s for s in (obj.steps or []) if isinstance(s, dict)]
        if not steps:
            return format_html("{}", "No steps recorded.")
        rows = format_html_join(
            "",
            '<tr><td><code>{}</code></td><td style="text-align:right">{}</td>'
            '<td style="text-align:right">{}</td><td style="text-align:right">{}</td></tr>',
            (
                (
                    step.get("name", "?"),
                    _number(step.get("duration_s"), "{:,.3f}"),
                    _number(step.get("n_rows"), "{:,}"),
                    _number(step.get("peak_rss_mb"), "{:,.1f}"),
                )
                for step in steps
            ),
        )
        return format_html(
            '<table class="dw-steps"><thead><tr><th>step</th><th style="text-align:right">duration (s)</th>'
            '<th style="text-align:right">rows</th><th style="text-align:right">peak memory (MB)</th></tr>'
            "</thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="parameters")
    def parameters_json(self, obj: PipelineRun) -> SafeString:
        text = json.dumps(obj.parameters or {}, indent=2, sort_keys=True, default=str)
        return format_html('<pre style="margin:0">{}</pre>', text)

    @admin.display(description="traceback")
    def traceback_text(self, obj: PipelineRun) -> SafeString:
        if not obj.traceback:
            return format_html("{}", "—")
        return format_html('<pre style="margin:0;white-space:pre-wrap;font-size:12px">{}</pre>', obj.traceback)

    # -- actions -------------------------------------------------------------
    @admin.action(description="Run now: re-run the selected runs' pipelines", permissions=["run"])
    def run_now(self, request: HttpRequest, queryset: QuerySet[PipelineRun]) -> None:
        names = sorted(set(queryset.order_by().values_list("pipeline", flat=True)))
        registered = all_pipelines()
        unknown = [name for name in names if name not in registered]
        if unknown:
            self.message_user(
                request,
                f"Not registered, not run: {', '.join(unknown)}. Registered pipelines: "
                f"{', '.join(registered) or '(none)'}.",
                messages.WARNING,
            )
        runnable = [name for name in names if name in registered]
        if not runnable:
            return
        mode = run_now_mode()
        username = request.user.get_username()
        for name in runnable:
            if mode == "celery":
                self._enqueue(request, name, username)
            else:
                self._run_here(request, name, username)

    def _enqueue(self, request: HttpRequest, name: str, username: str) -> None:
        from dw_analytics.celery import app  # noqa: F401  (binds the shared task to the configured app)
        from dw_analytics.warehouse.tasks import run_pipeline_task

        result = run_pipeline_task.delay(name, triggered_by=username)
        self.message_user(request, f"Queued {name} for a Celery worker (task {result.id}).", messages.INFO)

    def _run_here(self, request: HttpRequest, name: str, username: str) -> None:
        from dw_analytics.core.api import run

        try:
            log = run(name, triggered_by=username, raise_errors=False)
        except DWError as exc:  # e.g. PipelineLocked: another run is in progress
            self.message_user(request, f"{name} did not run: {exc}", messages.ERROR)
            return
        link = reverse("warehouse:run-detail", args=[log.run_id])
        if log.status == PipelineRun.Status.SUCCEEDED:
            text = format_html(
                '{} succeeded in {} s: {} rows processed (<a href="{}">run #{}</a>).',
                name,
                f"{log.duration_s:,.2f}",
                f"{log.n_processed:,}",
                link,
                log.run_id,
            )
            self.message_user(request, text, messages.SUCCESS)
        else:
            text = format_html('{} failed: {} (<a href="{}">run #{}</a>).', name, log.error, link, log.run_id)
            self.message_user(request, text, messages.ERROR)


@admin.register(Watermark)
class WatermarkAdmin(admin.ModelAdmin):
    """Watermarks: visible to staff with the view permission, editable by superusers only.

    Moving a watermark back makes the next incremental run re-read from there.
    """

    list_display = ["name", "last_updated_at", "last_id", "updated_at", "run"]
    search_fields = ["name"]
    raw_id_fields = ["run"]
    readonly_fields = ["updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Watermark | None = None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Watermark | None = None) -> bool:
        return request.user.is_active and request.user.is_superuser


def _number(value: object, template: str) -> str:
    if value is None:
        return "—"
    try:
        return template.format(value)
    except (TypeError, ValueError):
        return str(value)
