"""Watermarks of incremental sources: read, and advance inside the load's transaction."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q

from dw_analytics.warehouse.models import Watermark


@dataclass(frozen=True)
class Position:
    """The last change loaded from a source: its change time and id (the tie-breaker)."""

    updated_at: dt.datetime
    id: int

    def changes_filter(self, time_field: str = "atualizado_em", id_field: str = "id") -> Q:
        """Rows changed after this position: a later time, or the same time and a greater id.

        Written as ``time >= t AND (time > t OR id > i)`` so that the database
        range-scans an index on (time, id) instead of reading every row.

        Example:
            >>> Position(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 7).changes_filter()  # doctest: +ELLIPSIS
            <Q: (AND: ('atualizado_em__gte', ...), (OR: ('atualizado_em__gt', ...), ('id__gt', 7)))>
        """
        later = Q(**{f"{time_field}__gt": self.updated_at}) | Q(**{f"{id_field}__gt": self.id})
        return Q(**{f"{time_field}__gte": self.updated_at}) & later


def watermark_get(name: str, *, using: str = "default") -> Position | None:
    """The position of source ``name``, or None before its first load.

    Example:
        >>> watermark_get("sales.Pedido")  # doctest: +SKIP
        Position(updated_at=datetime.datetime(2026, 12, 3, ...), id=1000000)
    """
    row = Watermark.objects.using(using).filter(name=name).first()
    if row is None or row.last_updated_at is None:
        return None
    return Position(row.last_updated_at, row.last_id or 0)


def watermark_advance(
    name: str, position: Position | None, *, run_id: int | None = None, using: str = "default"
) -> None:
    """Move source ``name`` to ``position`` (None resets it).

    Call it inside the transaction of the load that used the rows, so the
    watermark and the data commit or roll back together.
    """
    Watermark.objects.using(using).update_or_create(
        name=name,
        defaults={
            "last_updated_at": position.updated_at if position else None,
            "last_id": position.id if position else None,
            "run_id": run_id,
        },
    )
