"""Run pipelines by name: the one entry point of the CLI, Celery and notebooks."""

from __future__ import annotations

from typing import Any

from dw_analytics.core.registry import get_pipeline
from dw_analytics.core.runlog import RunLog


def run(
    name: str,
    *,
    raise_errors: bool = True,
    triggered_by: str = "",
    using: str | None = None,
    **params: Any,
) -> RunLog:
    """Run the registered pipeline ``name`` and return its log (``log.result`` holds its output).

    Example:
        >>> import dw_analytics as dw
        >>> log = dw.run("analytics")  # doctest: +SKIP
        >>> log.result[["categoria", "total_vendas"]].head()  # doctest: +SKIP
    """
    pipeline = get_pipeline(name)(using=using, **params)
    return pipeline.run(raise_errors=raise_errors, triggered_by=triggered_by)
