"""Celery tasks of the operations app: background exports asked for from the admin."""

from __future__ import annotations

from celery import shared_task
from django.db import close_old_connections

from dw_analytics.jobs.export import run_export_job


@shared_task(name="dw_analytics.ops.export", acks_late=True)
def export_job_task(job_id: int) -> int:
    """Run the export job ``job_id``; the outcome is recorded on the job. Returns the id.

    Example:
        >>> export_job_task.delay(42)  # doctest: +SKIP
    """
    close_old_connections()
    run_export_job(job_id)
    return job_id
