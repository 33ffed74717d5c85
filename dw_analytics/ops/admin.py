"""Admin of the operations app, and the "export in the background" actions for changelists.

:func:`export_actions` gives admin actions that export the selected rows (or, with
"select all", every row the changelist's filters match) to CSV, Parquet or Excel. The
export runs in the background (Celery task ``dw_analytics.ops.export``; inline when
``DW_RUN_NOW_MODE`` says ``sync`` or no worker answers) and is recorded as an
:class:`ExportJob`, whose page offers the file for download when it is done.
"""

from __future__ import annotations

import uuid

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html

from dw_analytics.jobs.export import query_sign, run_export_job
from dw_analytics.ops.models import ConsolidatedFile, CorrectionRun, ExportJob, SyncWatermark, VendaFilial

#: CSV from the admin is for Excel in Brazil: ";" separator, decimal comma, BOM.
ADMIN_CSV_OPTIONS = {"sep": ";", "decimal_comma": True, "bom": True}
_EXTENSIONS = {"csv": "csv", "parquet": "parquet", "xlsx": "xlsx"}


def queue_export(job: ExportJob) -> str:
    """Start ``job`` after the current transaction commits; returns where it runs (celery/sync).

    Example:
        >>> queue_export(job)  # doctest: +SKIP
        'celery'
    """
    from dw_analytics.warehouse.admin import run_now_mode

    mode = run_now_mode()

    def start() -> None:
        if mode == "celery":
            from dw_analytics.ops.tasks import export_job_task

            export_job_task.delay(job.pk)
        else:
            run_export_job(job.pk)  # in this request, on its own connection state

    transaction.on_commit(start)
    return mode


def _export_action(fmt: str):
    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
        label = queryset.model._meta.label
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        job = ExportJob.objects.create(
            source=label,
            format=fmt,
            path=f"exports/{queryset.model._meta.model_name}-{stamp}-{uuid.uuid4().hex[:6]}.{_EXTENSIONS[fmt]}",
            options=ADMIN_CSV_OPTIONS if fmt == "csv" else {},
            # The changelist's selection and filters, exactly: Django's pickled query, signed.
            query_pickle=query_sign(queryset.order_by("pk").query),
            requested_by=request.user if request.user.is_authenticated else None,
        )
        mode = queue_export(job)
        where = "in the background" if mode == "celery" else "now"
        link = reverse("admin:ops_exportjob_change", args=[job.pk])
        modeladmin.message_user(
            request,
            format_html(
                'Export #{} ({}) started {}; <a href="{}">its page</a> offers the file when it is done.',
                job.pk,
                fmt,
                where,
                link,
            ),  # fmt: skip
            messages.SUCCESS,
        )

    action.__name__ = f"export_{fmt}"
    action.short_description = f"Export selected rows to {fmt.upper()} (background)"
    return action


def export_actions() -> list:
    """The CSV, Parquet and Excel export actions, for any ModelAdmin's ``actions``.

    Example:
        >>> class PedidoAdmin(admin.ModelAdmin):  # doctest: +SKIP
        ...     actions = export_actions()
    """
    return [_export_action(fmt) for fmt in ("csv", "xlsx", "parquet")]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written by the jobs only."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(ExportJob)
class ExportJobAdmin(ReadOnlyAdmin):
    list_display = ["id", "source", "format", "status", "n_rows", "requested_by", "created_at", "download"]
    list_filter = ["status", "format"]
    search_fields = ["source", "path"]
    readonly_fields = ["download"]
    exclude = ["query_pickle"]

    @admin.display(description="file")
    def download(self, job: ExportJob) -> str:
        if job.status != ExportJob.Status.SUCCEEDED:
            return job.status
        try:
            url = reverse("ops:export-download", args=[job.pk])
        except NoReverseMatch:  # the ops URLs are not included in the project
            return job.path
        return format_html('<a href="{}">download {}</a>', url, job.path.rsplit("/", 1)[-1])


@admin.register(CorrectionRun)
class CorrectionRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "model_label",
        "file_name",
        "applied_by",
        "applied_at",
        "n_inserted",
        "n_updated",
        "n_rejected",
        "status",
    ]
    list_filter = ["model_label", "status"]
    search_fields = ["file_name", "file_sha256", "applied_by"]


@admin.register(ConsolidatedFile)
class ConsolidatedFileAdmin(ReadOnlyAdmin):
    list_display = ["id", "target", "path", "encoding", "separator", "n_rows", "n_errors", "loaded_at"]
    list_filter = ["target"]
    search_fields = ["path", "sha256"]


@admin.register(SyncWatermark)
class SyncWatermarkAdmin(admin.ModelAdmin):
    list_display = ["name", "column", "kind", "value", "updated_at"]


@admin.register(VendaFilial)
class VendaFilialAdmin(admin.ModelAdmin):
    list_display = ["filial", "numero_nota", "item", "data_venda", "produto_codigo", "valor_total", "arquivo_origem"]
    list_filter = ["filial", "arquivo_origem"]
    search_fields = ["numero_nota", "produto_codigo", "descricao"]
    date_hierarchy = "data_venda"
    actions = export_actions()
