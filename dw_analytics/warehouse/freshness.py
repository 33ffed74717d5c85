"""Freshness of the pipelines' outputs: is the last successful run recent enough?

Each pipeline class declares ``freshness`` (a ``timedelta``): how old its last
successful run may be before its output counts as stale. Pipelines whose
``freshness`` is ``None`` are not monitored. ``/health/`` and
``manage.py check_freshness`` both read :func:`pipelines_freshness`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Max
from django.db.models.functions import Coalesce
from django.utils import timezone

from dw_analytics.core.registry import all_pipelines
from dw_analytics.warehouse.models import PipelineRun


@dataclass(frozen=True)
class Freshness:
    """The freshness verdict of one monitored pipeline.

    Attributes:
        pipeline: registered pipeline name.
        max_age: the pipeline's declared ``freshness``.
        last_success_at: when its last successful run finished (``None``: never succeeded).
        checked_at: the moment the verdict refers to.
    """

    pipeline: str
    max_age: timedelta
    last_success_at: datetime | None
    checked_at: datetime

    @property
    def age(self) -> timedelta | None:
        """Time since the last successful run finished; ``None`` when it never succeeded."""
        return None if self.last_success_at is None else self.checked_at - self.last_success_at

    @property
    def is_fresh(self) -> bool:
        """True when the last success is no older than ``max_age`` (a pipeline that never ran is stale)."""
        return self.age is not None and self.age <= self.max_age


def pipelines_freshness(*, now: datetime | None = None, using: str = "default") -> list[Freshness]:
    """The freshness of every monitored pipeline, sorted by name, in one query.

    A run counts from the moment it finished (its start when the finish time
    is missing): that is when its output became available.

    Args:
        now: the moment to judge at (default: now).
        using: database alias holding the run history.

    Example:
        >>> [(f.pipeline, f.is_fresh) for f in pipelines_freshness()]  # doctest: +SKIP
        [('nightly', True)]
    """
    checked_at = now or timezone.now()
    monitored = {
        name: cls.freshness for name, cls in all_pipelines().items() if getattr(cls, "freshness", None) is not None
    }
    if not monitored:
        return []
    last_success = dict(
        PipelineRun.objects.using(using)
        .filter(pipeline__in=list(monitored), status=PipelineRun.Status.SUCCEEDED)
        .order_by()
        .values("pipeline")
        .annotate(last=Max(Coalesce("finished_at", "started_at")))
        .values_list("pipeline", "last")
    )
    return [
        Freshness(
            pipeline=name,
            max_age=max_age,
            last_success_at=last_success.get(name),
            checked_at=checked_at,
        )
        for name, max_age in sorted(monitored.items())
    ]


def all_fresh(verdicts: list[Freshness]) -> bool:
    """True when every verdict is fresh (also when nothing is monitored).

    Example:
        >>> all_fresh([])
        True
    """
    return all(v.is_fresh for v in verdicts)


def format_age(age: timedelta | None) -> str:
    """A short human age: ``"3 h 05 min"``, ``"2 d 4 h"``, ``"never"``.

    Example:
        >>> format_age(timedelta(hours=3, minutes=5))
        '3 h 05 min'
        >>> format_age(None)
        'never'
    """
    if age is None:
        return "never"
    minutes = int(age.total_seconds() // 60)
    if minutes < 0:
        return "in the future"
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min"
