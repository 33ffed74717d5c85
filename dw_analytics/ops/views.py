"""Download of finished exports (staff only)."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import FileResponse, Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_safe

from dw_analytics.load.exceptions import OutputPathError
from dw_analytics.load.paths import resolve_output_path
from dw_analytics.ops.models import ExportJob

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@require_safe
@staff_member_required
def export_download(request: HttpRequest, job_id: int) -> FileResponse:
    """Send the file of a finished export as an attachment; 404 until it has succeeded.

    Example:
        GET /ops/exports/42/download/ -> pedidos-42.csv
    """
    job = get_object_or_404(ExportJob, pk=job_id)
    if job.status != ExportJob.Status.SUCCEEDED:
        raise Http404(f"export {job_id} is {job.status}, not ready for download")
    try:
        path = resolve_output_path(job.path)
    except OutputPathError:
        raise Http404("the export's file is outside the output folder") from None
    if not path.is_file():
        raise Http404("the export's file is gone (removed from the output folder)")
    return FileResponse(
        open(path, "rb"),  # noqa: SIM115 - FileResponse closes it
        as_attachment=True,
        filename=path.name,
        content_type=CONTENT_TYPES.get(job.format, "application/octet-stream"),
    )
