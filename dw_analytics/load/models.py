"""Load a DataFrame into a Django model: append, replace or upsert, atomically and fast.

:func:`write_model` validates the whole frame against the model first (unknown
or missing columns, nulls, types, ranges, decimal places), converts every
column vectorially to the representation the database backend stores, and
then writes inside one ``transaction.atomic`` through the fastest path the
backend offers:

* PostgreSQL: ``COPY ... FROM STDIN`` (CSV produced by pyarrow in C++); an
  upsert copies into a temporary table and runs one
  ``INSERT ... ON CONFLICT ... DO UPDATE ... WHERE <row changed>``.
* SQLite: ``executemany`` on Django's own ``sqlite3`` connection, with values
  already in the form Django writes (decimals as the REAL SQLite keeps,
  datetimes as naive UTC ``YYYY-MM-DD HH:MM:SS[.ffffff]`` strings).
* Any other backend (MariaDB, ...) or a model with field types the fast paths
  do not know (UUID, JSON, ...): the ORM's bulk insert and ``bulk_update``.

Everything runs on the caller's connection inside ``transaction.atomic``, so
inside a pipeline's atomic block a load is a savepoint and a failure rolls
back every write. ADBC ingestion (``adbc-driver-sqlite``) is faster on SQLite
but opens its own connection, so it cannot join the caller's transaction; it
is deliberately not used.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
from django.db import connections, models, transaction
from django.db.models import NOT_PROVIDED
from django.utils import timezone

from dw_analytics.core.exceptions import ConfigurationError
from dw_analytics.load import _columns
from dw_analytics.load._columns import ColumnPlan, LoadPlan
from dw_analytics.load.base import LoadResult
from dw_analytics.load.exceptions import LoadValidationError

__all__ = ["write_model"]

MODES = ("append", "replace", "upsert")
_AUTO_FIELD_TYPES = {"AutoField", "BigAutoField", "SmallAutoField"}


def write_model(
    df: pd.DataFrame,
    model: type[models.Model],
    mode: str = "append",
    unique_fields: Sequence[str] | None = None,
    *,
    using: str | None = None,
    batch_size: int | None = None,
    decimal_rounding: str = "reject",
) -> LoadResult:
    """Write ``df`` into ``model``'s table in one transaction.

    Columns are matched to the model's concrete fields by field name, attname
    (``categoria_id``) or ``db_column``; a foreign key is given as ids under
    either ``categoria`` or ``categoria_id``. Fields missing from the frame get
    their default (a callable default is called per row, except
    ``timezone.now`` which gives one timestamp for the whole load),
    ``auto_now`` / ``auto_now_add`` fields get the load's timestamp, and
    auto-increment primary keys are left to the database. Values given for
    ``auto_now`` fields are written as given (historical loads).

    Modes:
        * ``append``: insert every row.
        * ``replace``: delete every row of the table, then insert; readers see
          the old rows or the new ones, never a mix (``n_deleted`` counts).
        * ``upsert``: insert rows whose ``unique_fields`` are new and update
          the others, but only rows whose given values actually differ from
          the stored ones: an unchanged row is neither written nor counted in
          ``n_updated`` and its ``auto_now`` field keeps its value. Updates
          write only the columns present in the frame (plus ``auto_now``
          fields); defaults and ``auto_now_add`` apply to inserted rows only.

    Decimal fields take ``pd.ArrowDtype(pa.decimal128(p, s))`` columns,
    ``Decimal`` objects, integers, or floats. A value with more decimal
    places than the field allows is rejected unless
    ``decimal_rounding="half_even"``; a float is accepted only when it is
    exact at the field's scale (its shortest repr has at most that many
    places: 12.34 is, 0.1 + 0.2 is not). Naive datetimes are read as wall-clock
    time in ``settings.TIME_ZONE``.

    Args:
        df: the rows to write; its index labels name rows in error messages.
        model: the Django model class to load into.
        mode: ``"append"``, ``"replace"`` or ``"upsert"``.
        unique_fields: for ``upsert``, the fields identifying a row; they must
            be the primary key, a ``unique=True`` field or the fields of a
            unique constraint. Defaults to the primary key.
        using: database alias (default: the model's router choice for writes).
        batch_size: rows per database round trip (default 50,000 on SQLite
            and PostgreSQL, the backend's limit for the ORM path).
        decimal_rounding: ``"reject"`` (default) or ``"half_even"`` for values
            with more decimal places than a field allows.

    Returns:
        A :class:`LoadResult` with the target label, ``n_inserted``,
        ``n_updated``, ``n_deleted`` and ``duration_s``.

    Raises:
        LoadValidationError: the frame does not fit the model; raised before
            anything is written, naming the column and first offending rows.
        ConfigurationError: an invalid ``mode`` or ``decimal_rounding``.
        django.db.DatabaseError: the database refused the write (the whole
            load is rolled back).

    Example:
        >>> import pandas as pd, pyarrow as pa
        >>> from decimal import Decimal
        >>> from dw_analytics.sales.models import Destino
        >>> money = pd.ArrowDtype(pa.decimal128(14, 2))
        >>> df = pd.DataFrame({
        ...     "id_externo": ["A1", "A2"],
        ...     "valor": pd.Series([Decimal("10.50"), Decimal("3.30")], dtype=money),
        ...     "data": pd.to_datetime(["2024-05-01", "2024-05-02"]).date,
        ... })
        >>> result = write_model(df, Destino, mode="upsert")  # doctest: +SKIP
        >>> result.n_inserted, result.n_updated  # doctest: +SKIP
        (2, 0)
    """
    started = time.perf_counter()
    if mode not in MODES:
        raise ConfigurationError(f"mode must be one of {', '.join(MODES)}; got {mode!r}.", option="mode")
    if decimal_rounding not in _columns.DECIMAL_POLICIES:
        raise ConfigurationError(
            f"decimal_rounding must be one of {', '.join(_columns.DECIMAL_POLICIES)}; got {decimal_rounding!r}.",
            option="decimal_rounding",
        )
    if batch_size is not None and batch_size < 1:
        raise ConfigurationError(f"batch_size must be a positive integer; got {batch_size!r}.", option="batch_size")
    if not isinstance(df, pd.DataFrame):
        raise LoadValidationError(
            f"{model._meta.label}: write_model expects a pandas DataFrame, got {type(df).__name__}.",
            target=model._meta.label,
        )
    from django.db import router

    using = using or router.db_for_write(model)
    connection = connections[using]
    plan = build_plan(df, model, mode, unique_fields, connection=connection, decimal_rounding=decimal_rounding)
    writer = _writer_for(connection, plan)
    with transaction.atomic(using=using):
        counts = writer.write(plan, mode, connection, batch_size)
    return LoadResult(
        target=plan.label,
        n_inserted=counts.inserted,
        n_updated=counts.updated,
        n_deleted=counts.deleted,
        duration_s=time.perf_counter() - started,
        details={"mode": mode, "path": writer.NAME, "rows": plan.n_rows, "database": using},
    )


def _writer_for(connection: Any, plan: LoadPlan) -> Any:
    """The writer module for this backend and plan (tests patch it to force a path)."""
    from dw_analytics.load import _portable, _postgres, _sqlite

    if plan.fast and connection.vendor == "sqlite":
        return _sqlite
    if plan.fast and connection.vendor == "postgresql":
        return _postgres
    return _portable


# -- plan ---------------------------------------------------------------------


def _field_lookup(model: type[models.Model]) -> dict[str, models.Field]:
    """Column name → field, by name first, then attname, then db column."""
    lookup: dict[str, models.Field] = {}
    fields = model._meta.concrete_fields
    for attr in ("name", "attname", "column"):
        for f in fields:
            lookup.setdefault(getattr(f, attr), f)
    return lookup


def _is_auto_pk(f: models.Field) -> bool:
    return f.primary_key and f.get_internal_type() in _AUTO_FIELD_TYPES


def build_plan(
    df: pd.DataFrame,
    model: type[models.Model],
    mode: str,
    unique_fields: Sequence[str] | None,
    *,
    connection: Any,
    decimal_rounding: str = "reject",
) -> LoadPlan:
    """Resolve, validate and convert ``df`` for ``model``; raise before any write."""
    label = model._meta.label
    lookup = _field_lookup(model)
    if df.columns.has_duplicates:
        dupes = sorted({c for c in df.columns[df.columns.duplicated()]}, key=str)
        raise LoadValidationError(
            f"{label}: duplicate column name(s) {dupes}; keep one of each.",
            target=label,
            column=str(dupes[0]),
        )
    by_field: dict[models.Field, str] = {}
    unknown: list[str] = []
    for column in df.columns:
        f = lookup.get(column) if isinstance(column, str) else None
        if f is None:
            unknown.append(column)
            continue
        if f in by_field:
            raise LoadValidationError(
                f"{label}: columns {by_field[f]!r} and {column!r} both map to field {f.name!r}; keep one.",
                target=label,
                column=column,
            )
        by_field[f] = column
    if unknown:
        valid = sorted({f.name for f in model._meta.concrete_fields} | {f.attname for f in model._meta.concrete_fields})
        raise LoadValidationError(
            f"{label}: unknown column(s) {', '.join(repr(c) for c in unknown)}; "
            f"the model's columns are: {', '.join(valid)}.",
            target=label,
            column=str(unknown[0]),
        )

    keys = _resolve_unique_fields(model, mode, unique_fields, lookup, by_field) if mode == "upsert" else []
    n_rows = len(df)
    ops = connection.ops
    # One timestamp for the whole load: auto_now, auto_now_add and timezone.now defaults.
    now = timezone.now()
    plans: list[ColumnPlan] = []
    missing: list[str] = []
    explicit_auto_pk = False
    for f in model._meta.concrete_fields:
        column = by_field.get(f)
        if column is not None:
            kind, values = _columns.convert_column(
                label, f, column, df[column], ops=ops, decimal_rounding=decimal_rounding
            )
            is_key = f in keys or f.primary_key
            plans.append(ColumnPlan(f, kind, column, values, update=not is_key, compare=not is_key))
            explicit_auto_pk = explicit_auto_pk or _is_auto_pk(f)
            continue
        if _is_auto_pk(f) or getattr(f, "db_default", NOT_PROVIDED) is not NOT_PROVIDED:
            continue  # the database fills it
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            value = now if f.get_internal_type() == "DateTimeField" else timezone.localdate(now)
            kind, values = _columns.constant_column(f, value, n_rows, ops=ops)
            plans.append(ColumnPlan(f, kind, None, values, update=bool(f.auto_now), compare=False))
            continue
        if f.has_default():
            kind, values = _default_column(f, n_rows, ops, label, now)
            plans.append(ColumnPlan(f, kind, None, values, update=False, compare=False))
            continue
        if f.null:
            continue  # omitted: NULL on insert, untouched on update
        missing.append(f.attname if f.is_relation else f.name)
    if missing:
        raise LoadValidationError(
            f"{label}: missing required column(s) {', '.join(repr(m) for m in missing)} "
            "(non-null, no default); add them to the frame.",
            target=label,
            column=missing[0],
        )
    key_plans = [p for p in plans if p.field in keys]
    if key_plans:
        _check_unique_keys(label, df, key_plans)
    return LoadPlan(model, plans, n_rows, key_columns=key_plans, explicit_auto_pk=explicit_auto_pk)


def _default_column(f: models.Field, n_rows: int, ops: Any, label: str, now: dt.datetime) -> tuple[str, Any]:
    default = f.default
    if default is timezone.now:
        return _columns.constant_column(f, now, n_rows, ops=ops)
    if not callable(default):
        return _columns.constant_column(f, f.get_default(), n_rows, ops=ops)
    # A callable default (uuid4, ...) is called once per row, as Django does.
    values = pd.Series([f.get_default() for _ in range(n_rows)], dtype=object)
    return _columns.convert_column(label, f, f.name, values, ops=ops, decimal_rounding="reject")


def _unique_sets(model: type[models.Model]) -> list[frozenset[models.Field]]:
    """Every field set the database enforces as unique without conditions."""
    meta = model._meta
    sets = [frozenset([meta.pk])]
    sets += [frozenset([f]) for f in meta.concrete_fields if f.unique and not f.primary_key]
    for together in meta.unique_together:
        sets.append(frozenset(meta.get_field(name) for name in together))
    for constraint in meta.total_unique_constraints:
        sets.append(frozenset(meta.get_field(name) for name in constraint.fields))
    return sets


def _resolve_unique_fields(
    model: type[models.Model],
    mode: str,
    unique_fields: Sequence[str] | None,
    lookup: dict[str, models.Field],
    by_field: dict[models.Field, str],
) -> list[models.Field]:
    label = model._meta.label
    if isinstance(unique_fields, str):
        unique_fields = [unique_fields]
    if not unique_fields:
        unique_fields = [model._meta.pk.name]
    fields = []
    for name in unique_fields:
        f = lookup.get(name)
        if f is None:
            raise LoadValidationError(
                f"{label}: unique_fields names unknown field {name!r}.", target=label, column=name
            )
        fields.append(f)
    valid = _unique_sets(model)
    if frozenset(fields) not in valid:
        choices = "; ".join(sorted(", ".join(sorted(f.name for f in s)) for s in valid))
        raise LoadValidationError(
            f"{label}: unique_fields {list(unique_fields)} is not the primary key or a unique constraint "
            f"of the model; upsert needs one of: {choices}.",
            target=label,
            column=str(unique_fields[0]),
        )
    absent = [f.name for f in fields if f not in by_field]
    if absent:
        raise LoadValidationError(
            f"{label}: upsert key column(s) {absent} missing from the frame.",
            target=label,
            column=absent[0],
        )
    return fields


def _check_unique_keys(label: str, df: pd.DataFrame, key_plans: list[ColumnPlan]) -> None:
    """Upsert keys must be unique within the frame (else counts and updates are ambiguous)."""
    keys = pd.DataFrame({p.column: _as_series(p.values) for p in key_plans})
    dupes = keys.duplicated(keep="first").to_numpy()
    if dupes.any():
        shown = keys.to_numpy(dtype=object)
        columns = [p.source for p in key_plans]
        err = _columns._offenders(
            label,
            ", ".join(columns),
            df.index,
            dupes,
            [tuple(row) if len(row) > 1 else row[0] for row in shown],
            f"duplicate key(s) in the frame for unique_fields {columns}",
            "Each key may appear once per upsert; drop or aggregate the duplicates first.",
        )
        raise err


def _as_series(values: Any) -> pd.Series:
    return values.to_pandas() if hasattr(values, "to_pandas") else pd.Series(values, dtype=object)


class Counts:
    """Rows inserted, updated and deleted by a writer."""

    __slots__ = ("inserted", "updated", "deleted")

    def __init__(self, inserted: int = 0, updated: int = 0, deleted: int = 0) -> None:
        self.inserted, self.updated, self.deleted = inserted, updated, deleted


def batches(n_rows: int, batch_size: int) -> Iterable[tuple[int, int]]:
    """(offset, length) pairs covering ``n_rows``."""
    for offset in range(0, n_rows, batch_size):
        yield offset, min(batch_size, n_rows - offset)


def on_batch_written(rows_done: int) -> None:
    """Called by the writers after each batch; a test hook (injected failures)."""
