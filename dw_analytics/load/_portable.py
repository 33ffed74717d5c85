"""Portable writer: the ORM's bulk insert and ``bulk_update``, for any backend.

Used on backends without a fast path (MariaDB, Oracle, ...) and for models
with field types the vectorized converters do not handle (UUID, JSON, ...).
Inserts go through ``QuerySet._insert(raw=True)`` (what ``bulk_create`` does
underneath) so explicit values for ``auto_now`` fields are kept, as on the
fast paths. Upserts read the stored rows of the frame's keys, compare them in
Python, insert the new keys and ``bulk_update`` only the changed rows, so the
counts are exact on every backend.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from dw_analytics.load import models as _models
from dw_analytics.load._columns import ColumnPlan, LoadPlan

NAME = "orm-bulk"
#: keys per lookup query when reading the stored rows of an upsert
_LOOKUP_BATCH = 500


def _python(plan: ColumnPlan, offset: int, length: int) -> list:
    values = plan.values
    if isinstance(values, pa.Array):
        return values.slice(offset, length).to_pylist()
    return list(values[offset : offset + length])


def _instances(plan: LoadPlan, offset: int, length: int) -> list:
    attnames = [c.field.attname for c in plan.columns]
    columns = [_python(c, offset, length) for c in plan.columns]
    model = plan.model
    return [model(**dict(zip(attnames, row, strict=True))) for row in zip(*columns, strict=True)]


def _insert(plan: LoadPlan, objs: list, using: str, connection: Any, batch_size: int | None) -> None:
    if not objs:
        return
    fields = [c.field for c in plan.columns]
    size = batch_size or max(connection.ops.bulk_batch_size(fields, objs), 1)
    manager = plan.model._base_manager.using(using)
    for start in range(0, len(objs), size):
        # raw=True: values are taken as given (no pre_save / auto_now override).
        manager._insert(objs[start : start + size], fields=fields, using=using, raw=True)


def write(plan: LoadPlan, mode: str, connection: Any, batch_size: int | None) -> _models.Counts:
    """Write ``plan`` in ``mode``; the caller holds the transaction."""
    using = connection.alias
    counts = _models.Counts()
    if mode == "replace":
        counts.deleted = plan.model._base_manager.using(using).all()._raw_delete(using)
    if plan.n_rows == 0:
        return counts
    chunk = batch_size or 10_000
    done = 0
    for offset, length in _models.batches(plan.n_rows, chunk):
        objs = _instances(plan, offset, length)
        if mode == "upsert":
            inserted, updated = _upsert_chunk(plan, objs, using, connection, batch_size)
            counts.inserted += inserted
            counts.updated += updated
        else:
            _insert(plan, objs, using, connection, batch_size)
            counts.inserted += len(objs)
        done += length
        _models.on_batch_written(done)
    if plan.explicit_auto_pk:
        from django.core.management.color import no_style

        with connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_sql(no_style(), [plan.model]):
                cursor.execute(sql)
    return counts


def _upsert_chunk(plan: LoadPlan, objs: list, using: str, connection: Any, batch_size: int | None) -> tuple[int, int]:
    key_names = [c.field.attname for c in plan.key_columns]
    compare = [c.field.attname for c in plan.columns if c.compare]
    update_fields = [c.field for c in plan.columns if c.update]
    pk_name = plan.model._meta.pk.attname
    stored = _stored_rows(plan, objs, key_names, [pk_name, *compare], using)
    new, changed = [], []
    for obj in objs:
        key = tuple(getattr(obj, k) for k in key_names)
        row = stored.get(key)
        if row is None:
            new.append(obj)
            continue
        given = tuple(getattr(obj, name) for name in compare)
        if given != row[1:]:
            setattr(obj, pk_name, row[0])
            changed.append(obj)
    _insert(plan, new, using, connection, batch_size)
    if changed and update_fields:
        plan.model._base_manager.using(using).bulk_update(
            changed, [f.name for f in update_fields], batch_size=batch_size
        )
    return len(new), len(changed) if update_fields else 0


def _stored_rows(plan: LoadPlan, objs: list, key_names: list[str], fields: list[str], using: str) -> dict:
    """Stored (pk, *compared values) of the objects' keys, keyed by key tuple."""
    from django.db.models import Q

    manager = plan.model._base_manager.using(using)
    stored: dict[tuple, tuple] = {}
    for start in range(0, len(objs), _LOOKUP_BATCH):
        part = objs[start : start + _LOOKUP_BATCH]
        if len(key_names) == 1:
            name = key_names[0]
            condition = Q(**{f"{name}__in": [getattr(o, name) for o in part]})
        else:
            condition = Q()
            for o in part:
                condition |= Q(**{k: getattr(o, k) for k in key_names})
        for row in manager.filter(condition).values_list(*key_names, *fields):
            stored[tuple(row[: len(key_names)])] = tuple(row[len(key_names) :])
    return stored
