"""Celery tasks: run a registered pipeline in a worker."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import close_old_connections

from dw_analytics.core.api import run
from dw_analytics.core.retry import is_transient


@shared_task(bind=True, name="dw_analytics.run_pipeline", max_retries=5, acks_late=True)
def run_pipeline_task(self, name: str, triggered_by: str = "celery", **params: Any) -> dict[str, Any]:
    """Run pipeline ``name`` and return its log as a dict.

    Transient failures (lost database connection, lock timeout) are retried
    with exponential backoff (10 s, 20 s, 40 s...); data errors fail at once.

    Example:
        >>> run_pipeline_task.delay("nightly", triggered_by="beat")  # doctest: +SKIP
    """
    close_old_connections()
    try:
        log = run(name, triggered_by=triggered_by, **params)
    except Exception as exc:
        if is_transient(exc):
            close_old_connections()
            raise self.retry(exc=exc, countdown=10 * 2**self.request.retries) from exc
        raise
    return log.as_dict()
