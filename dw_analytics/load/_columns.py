"""Map a DataFrame onto a Django model: resolve columns, validate, convert to Arrow.

Private helper of :mod:`dw_analytics.load.models`. Every check here runs on
whole columns (pyarrow compute / numpy) before anything is written; the only
per-value Python work happens on object columns that hold values of types the
fast path does not know, and on the error path (to name offending rows).

Each model field the load writes becomes a :class:`ColumnPlan` whose
``values`` is one Arrow array of a canonical type per kind of field:

======== ===========================================================
kind     canonical Arrow type
======== ===========================================================
int      int64
decimal  decimal128(max_digits, decimal_places)
float    float64
str      large_string
bool     bool_
date     date32
datetime timestamp[us, tz=UTC] (naive local time when ``USE_TZ`` is False)
other    a Python-object list handled by the ORM (portable path only)
======== ===========================================================
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from django.conf import settings
from django.db import models
from django.utils import timezone

from dw_analytics.core.fields import INTEGER_FIELD_TYPES
from dw_analytics.load.exceptions import LoadValidationError
from transforms.dates import outside_python_years

#: how many offending rows an error message names
MAX_REPORTED_ROWS = 5

_STR_TYPES = {"CharField", "TextField", "SlugField", "EmailField", "URLField"}
_KIND_BY_TYPE = {
    **dict.fromkeys(INTEGER_FIELD_TYPES, "int"),
    **dict.fromkeys(_STR_TYPES, "str"),
    "DecimalField": "decimal",
    "FloatField": "float",
    "BooleanField": "bool",
    "DateField": "date",
    "DateTimeField": "datetime",
}

DECIMAL_POLICIES = ("reject", "half_even")


@dataclass
class ColumnPlan:
    """One model field the load writes, with its values ready for a writer."""

    field: models.Field
    kind: str
    #: the DataFrame column it came from; None when filled (default, auto_now...)
    source: str | None
    #: canonical Arrow array (see the module docstring); a list for kind "other"
    values: Any
    #: written by the SET clause of an upsert when the key already exists
    update: bool = True
    #: compared to decide whether an existing row changed
    compare: bool = True

    @property
    def column(self) -> str:
        """The database column name."""
        return self.field.column


@dataclass
class LoadPlan:
    """Everything a writer needs: target table, columns and upsert keys."""

    model: type[models.Model]
    columns: list[ColumnPlan]
    n_rows: int
    key_columns: list[ColumnPlan] = field(default_factory=list)
    #: True when an auto-increment primary key is written explicitly
    explicit_auto_pk: bool = False

    @property
    def table(self) -> str:
        return self.model._meta.db_table

    @property
    def label(self) -> str:
        return self.model._meta.label

    @property
    def fast(self) -> bool:
        """True when every column has a kind the vectorized writers handle."""
        return all(c.kind != "other" for c in self.columns)


def field_kind(model_field: models.Field) -> str:
    """The conversion kind of a concrete field (foreign keys take their target's)."""
    target = model_field
    while target.is_relation:
        target = target.target_field
    return _KIND_BY_TYPE.get(target.get_internal_type(), "other")


def _error(target: str, column: str | None, message: str, rows: Sequence[Any] = ()) -> LoadValidationError:
    return LoadValidationError(f"{target}: {message}", target=target, column=column, rows=list(rows) or None)


def _describe_rows(index: pd.Index, positions: np.ndarray, values: Sequence[Any]) -> tuple[list, str]:
    """The first offending rows as (labels, "label=value, ...") for a message."""
    positions = positions[:MAX_REPORTED_ROWS]
    labels = [index[p] for p in positions]
    shown = ", ".join(f"row {label!r}: {values[p]!r}" for label, p in zip(labels, positions, strict=True))
    return labels, shown


def _offenders(
    target: str,
    column: str,
    index: pd.Index,
    mask: Any,
    raw: Sequence[Any],
    problem: str,
    hint: str = "",
) -> LoadValidationError | None:
    """An error naming the rows where ``mask`` is true, or None when it is nowhere."""
    mask = np.asarray(pa.array(mask).fill_null(False) if isinstance(mask, pa.Array) else mask, dtype=bool)
    positions = np.flatnonzero(mask)
    if positions.size == 0:
        return None
    labels, shown = _describe_rows(index, positions, raw)
    more = f" (and {positions.size - len(labels)} more)" if positions.size > len(labels) else ""
    message = f"column {column!r}: {positions.size} {problem}; first offending rows: {shown}{more}."
    if hint:
        message += f" {hint}"
    return _error(target, column, message, labels)


def _raise_if(err: LoadValidationError | None) -> None:
    if err is not None:
        raise err


class _RawValues(Sequence):
    """Lazy access to a Series' values for error messages only."""

    def __init__(self, series: pd.Series) -> None:
        self._series = series

    def __len__(self) -> int:
        return len(self._series)

    def __getitem__(self, position: int) -> Any:
        try:
            return self._series.iloc[position]
        except (OverflowError, ValueError):
            # A value Arrow holds and Python cannot (a date in year 0): Arrow's text of it.
            return _to_arrow(self._series.iloc[position : position + 1]).cast(pa.string())[0].as_py()


# -- per-value type predicates (object columns and error messages only) ----------


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_decimal_like(v: Any) -> bool:
    return isinstance(v, decimal.Decimal) or _is_int(v)


def _is_finite(v: Any) -> bool:
    # pandas treats Decimal('NaN') as missing; infinities are not numbers.
    return not (isinstance(v, decimal.Decimal) and v.is_infinite())


def _is_number(v: Any) -> bool:
    return isinstance(v, (float, decimal.Decimal, np.floating)) or _is_int(v)


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_bool(v: Any) -> bool:
    return isinstance(v, (bool, np.bool_))


def _is_datetime(v: Any) -> bool:
    return isinstance(v, (dt.datetime, pd.Timestamp, np.datetime64))


def _is_date(v: Any) -> bool:
    return isinstance(v, dt.date) and not isinstance(v, dt.datetime)


# -- input → Arrow ------------------------------------------------------------


def _to_arrow(series: pd.Series) -> pa.Array:
    """The series as one Arrow array (NaN / NaT / None become null)."""
    arr = pa.array(series, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr


def _wrong_type(target: str, column: str, series: pd.Series, expected: str, ok: Any = None) -> LoadValidationError:
    """A wrong-type error; ``ok(value) -> bool`` finds the offending object values."""
    raw = _RawValues(series)
    if series.dtype == object and ok is not None:
        notna = series.notna().to_numpy()
        bad = np.fromiter((not ok(v) for v in series.to_numpy()), dtype=bool, count=len(series))
        mask = bad & notna
    else:
        mask = series.notna().to_numpy()
    err = _offenders(
        target,
        column,
        series.index,
        mask,
        raw,
        f"value(s) of the wrong type (expected {expected}, dtype {series.dtype})",
    )
    if err is None:  # every value is null: still the wrong dtype
        err = _error(target, column, f"column {column!r} has dtype {series.dtype}; expected {expected}.")
    return err


def _convert_int(target: str, column: str, series: pd.Series, internal_type: str, ops: Any) -> pa.Array:
    raw = _RawValues(series)
    if pd.api.types.is_bool_dtype(series.dtype) or (series.dtype == object and not _all(series, _is_int)):
        raise _wrong_type(target, column, series, "integers", _is_int)
    try:
        arr = _to_arrow(series)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise _wrong_type(target, column, series, "integers", _is_int) from None
    if pa.types.is_floating(arr.type) or pa.types.is_decimal(arr.type):
        non_integer = pc.not_equal(pc.floor(arr), arr)
        _raise_if(_offenders(target, column, series.index, non_integer, raw, "non-integer value(s)"))
        if pa.types.is_decimal(arr.type):
            arr = pc.cast(arr, pa.decimal128(38, 0) if arr.type.precision <= 38 else pa.decimal256(76, 0))
    elif not (pa.types.is_integer(arr.type) or pa.types.is_null(arr.type)):
        raise _wrong_type(target, column, series, "integers")
    low, high = ops.integer_field_range(internal_type)
    _raise_if(_out_of_range(target, column, series, arr, low, high))
    return pc.cast(arr, pa.int64())


def _out_of_range(
    target: str, column: str, series: pd.Series, arr: pa.Array, low: Any, high: Any
) -> LoadValidationError | None:
    if pa.types.is_decimal(arr.type):
        low_s = pa.scalar(decimal.Decimal(low), pa.decimal128(38, 0))
        high_s = pa.scalar(decimal.Decimal(high), pa.decimal128(38, 0))
    elif pa.types.is_floating(arr.type):
        low_s, high_s = float(low), float(high)
    elif pa.types.is_unsigned_integer(arr.type):
        low_s, high_s = max(low, 0), high
    else:
        low_s, high_s = low, high
    if pa.types.is_unsigned_integer(arr.type) and high >= 2**63:
        high_s = 2**63 - 1
    mask = pc.or_(pc.less(arr, low_s), pc.greater(arr, high_s))
    return _offenders(
        target,
        column,
        series.index,
        mask,
        _RawValues(series),
        f"value(s) outside the field's range [{low}, {high}]",
    )


def _all(series: pd.Series, ok: Any) -> bool:
    values = series.to_numpy()
    notna = series.notna().to_numpy()
    return all(ok(v) for v, keep in zip(values, notna, strict=True) if keep)


def _convert_decimal(
    target: str, column: str, series: pd.Series, max_digits: int, places: int, policy: str
) -> pa.Array:
    raw = _RawValues(series)
    if pd.api.types.is_bool_dtype(series.dtype):
        raise _wrong_type(target, column, series, "decimals")
    if series.dtype == object and not _all(series, _is_decimal_like):
        raise _wrong_type(target, column, series, "Decimal values (or integers)", _is_decimal_like)
    if series.dtype == object and not _all(series, _is_finite):
        raise _wrong_type(target, column, series, "finite Decimal values", _is_finite)
    try:
        arr = _to_arrow(series)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise _wrong_type(target, column, series, "Decimal values", _is_decimal_like) from None

    if pa.types.is_floating(arr.type):
        arr = _float_to_decimal(target, column, series, arr, places, policy)
    elif pa.types.is_integer(arr.type):
        arr = pc.cast(arr, pa.decimal128(38, places) if places <= 18 else pa.decimal256(76, places))
    elif pa.types.is_null(arr.type):
        arr = pa.nulls(len(arr), pa.decimal128(max(max_digits, 1), places))
    elif not pa.types.is_decimal(arr.type):
        raise _wrong_type(target, column, series, "Decimal values")

    if arr.type.scale > places:
        rounded = pc.round(arr, ndigits=places, round_mode="half_to_even")
        if policy == "reject":
            _raise_if(
                _offenders(
                    target,
                    column,
                    series.index,
                    pc.not_equal(rounded, arr),
                    raw,
                    f"value(s) with more than {places} decimal places",
                    "Round them first (e.g. half-even to the field's places) or pass decimal_rounding='half_even'.",
                )
            )
        arr = rounded
    # Range: |value| < 10 ** (max_digits - places), checked before the narrowing
    # cast; skipped when the input type cannot hold a value that large.
    scale = arr.type.scale
    if arr.type.precision - scale > max_digits - places:
        digits = max_digits - places + 1 + scale
        bound_type = pa.decimal128(digits, scale) if digits <= 38 else pa.decimal256(digits, scale)
        bound = pa.scalar(decimal.Decimal(10) ** (max_digits - places), bound_type)
        _raise_if(
            _offenders(
                target,
                column,
                series.index,
                pc.greater_equal(pc.abs(arr), bound),
                raw,
                f"value(s) too large for max_digits={max_digits}, decimal_places={places}",
            )
        )
    out_type = pa.decimal128(max_digits, places) if max_digits <= 38 else pa.decimal256(max_digits, places)
    # Widening the scale is exact; every value fits max_digits (checked above).
    return pc.cast(arr, out_type)


def _float_to_decimal(target: str, column: str, series: pd.Series, arr: pa.Array, places: int, policy: str) -> pa.Array:
    """Floats become decimals only when exact at the field's scale.

    A float is accepted when the decimal with ``places`` digits nearest to it
    converts back to the very same float, i.e. its shortest repr has at most
    ``places`` decimals (12.34 passes, 0.1 + 0.2 does not). With
    ``decimal_rounding='half_even'`` every float is rounded to ``places``.
    """
    raw = _RawValues(series)
    values = arr.to_numpy(zero_copy_only=False)
    _raise_if(_offenders(target, column, series.index, np.isinf(values), raw, "infinite value(s)"))
    factor = 10.0**places
    with np.errstate(invalid="ignore"):
        scaled = np.round(values * factor)
        exact = scaled / factor == values
        too_big = np.abs(scaled) >= 2.0**53
    nulls = np.asarray(arr.is_null())
    _raise_if(
        _offenders(
            target,
            column,
            series.index,
            too_big & ~nulls,
            raw,
            "float value(s) too large to convert exactly",
            "Pass Decimal values (pd.ArrowDtype(pa.decimal128(p, s))) instead.",
        )
    )
    if policy == "reject":
        _raise_if(
            _offenders(
                target,
                column,
                series.index,
                ~exact & ~nulls,
                raw,
                f"float value(s) not exact at {places} decimal places",
                "Pass Decimal values, round the floats first, or pass decimal_rounding='half_even'.",
            )
        )
    unscaled = pa.array(np.where(nulls, 0, scaled).astype(np.int64), mask=nulls)
    as_decimal = pc.cast(unscaled, pa.decimal128(38, 0))
    # Reinterpret the unscaled integers with the field's scale (same storage).
    return pa.Array.from_buffers(pa.decimal128(38, places), len(as_decimal), as_decimal.buffers())


def _convert_float(target: str, column: str, series: pd.Series) -> pa.Array:
    if pd.api.types.is_bool_dtype(series.dtype) or (series.dtype == object and not _all(series, _is_number)):
        raise _wrong_type(target, column, series, "numbers", _is_number)
    try:
        arr = _to_arrow(series)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise _wrong_type(target, column, series, "numbers", _is_number) from None
    if not (
        pa.types.is_floating(arr.type)
        or pa.types.is_integer(arr.type)
        or pa.types.is_decimal(arr.type)
        or pa.types.is_null(arr.type)
    ):
        raise _wrong_type(target, column, series, "numbers")
    return pc.cast(arr, pa.float64())


def _convert_str(target: str, column: str, series: pd.Series, max_length: int | None) -> pa.Array:
    if series.dtype == object and not _all(series, _is_str):
        raise _wrong_type(target, column, series, "strings", _is_str)
    try:
        arr = _to_arrow(series)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise _wrong_type(target, column, series, "strings", _is_str) from None
    if pa.types.is_null(arr.type):
        arr = arr.cast(pa.large_string())
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) or pa.types.is_string_view(arr.type)):
        raise _wrong_type(target, column, series, "strings")
    arr = arr.cast(pa.large_string())
    if _may_hold_nul(arr):
        _raise_if(
            _offenders(
                target,
                column,
                series.index,
                pc.match_substring(arr, "\x00"),
                _RawValues(series),
                "value(s) with a NUL byte (\\x00), which PostgreSQL text cannot store",
                "Remove it first (e.g. .str.replace('\\x00', '')).",
            )
        )
    if max_length is not None:
        _raise_if(
            _offenders(
                target,
                column,
                series.index,
                pc.greater(pc.utf8_length(arr), max_length),
                _RawValues(series),
                f"value(s) longer than max_length={max_length}",
            )
        )
    return arr


def _may_hold_nul(arr: pa.Array) -> bool:
    """False when no value of a string array can hold a NUL byte.

    One pass over the character data (the values' bytes end to end) is far
    cheaper than searching each value, which is only done when this says so.
    """
    data = arr.buffers()[2]
    return data is not None and data.size > 0 and np.frombuffer(data, dtype=np.uint8).min() == 0


def _convert_bool(target: str, column: str, series: pd.Series) -> pa.Array:
    if series.dtype == object and not _all(series, _is_bool):
        raise _wrong_type(target, column, series, "booleans", _is_bool)
    try:
        arr = _to_arrow(series)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise _wrong_type(target, column, series, "booleans", _is_bool) from None
    if pa.types.is_null(arr.type):
        return arr.cast(pa.bool_())
    if not pa.types.is_boolean(arr.type):
        raise _wrong_type(target, column, series, "booleans")
    return arr


def _local_zone() -> Any:
    return timezone.get_default_timezone()


def _to_timestamp(target: str, column: str, series: pd.Series, expected: str) -> pa.Array:
    """Datetime-like input as an Arrow timestamp (tz-aware if the input was)."""
    if series.dtype == object and not _all(series, _is_datetime):
        raise _wrong_type(target, column, series, expected, _is_datetime)
    if series.dtype == object:
        try:
            series = pd.Series(pd.to_datetime(series.to_numpy(), utc=None), index=series.index)
        except (ValueError, TypeError) as exc:
            raise _error(
                target,
                column,
                f"column {column!r}: mixes time-zone-aware and naive datetimes ({exc}); "
                "make them all aware or all naive.",
            ) from None
    try:
        arr = _to_arrow(series)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise _wrong_type(target, column, series, expected, _is_datetime) from None
    if pa.types.is_null(arr.type):
        return arr.cast(pa.timestamp("us"))
    if not pa.types.is_timestamp(arr.type):
        raise _wrong_type(target, column, series, expected)
    if arr.type.unit == "ns":
        as_int = pc.cast(pc.cast(arr, pa.timestamp("ns")), pa.int64())
        sub_us = pc.not_equal(pc.multiply(pc.divide(as_int, 1000), 1000), as_int)
        _raise_if(
            _offenders(
                target,
                column,
                series.index,
                sub_us,
                _RawValues(series),
                "value(s) with nanoseconds",
                "Django stores microseconds; floor them first (.dt.floor('us')).",
            )
        )
    return arr.cast(pa.timestamp("us", tz=arr.type.tz))


def _localize_naive(target: str, column: str, series: pd.Series, arr: pa.Array) -> pa.Array:
    """Naive timestamps read as wall-clock time in settings.TIME_ZONE, returned in UTC."""
    zone = str(_local_zone())
    try:
        local = pc.assume_timezone(arr, timezone=zone, ambiguous="raise", nonexistent="raise")
    except pa.ArrowInvalid:
        earliest = pc.assume_timezone(arr, timezone=zone, ambiguous="earliest", nonexistent="earliest")
        latest = pc.assume_timezone(arr, timezone=zone, ambiguous="latest", nonexistent="latest")
        _raise_if(
            _offenders(
                target,
                column,
                series.index,
                pc.not_equal(pc.cast(earliest, pa.int64()), pc.cast(latest, pa.int64())),
                _RawValues(series),
                f"naive datetime(s) that do not exist or are ambiguous in {zone}",
                "Pass time-zone-aware datetimes for them.",
            )
        )
        raise
    return local.cast(pa.timestamp("us", tz="UTC"))


def _convert_datetime(target: str, column: str, series: pd.Series) -> pa.Array:
    if pd.api.types.is_string_dtype(series.dtype) and series.dtype != object:
        raise _wrong_type(target, column, series, "datetimes")
    arr = _to_timestamp(target, column, series, "datetimes")
    if settings.USE_TZ:
        if arr.type.tz is None:
            arr = _localize_naive(target, column, series, arr)
        else:
            arr = arr.cast(pa.timestamp("us", tz="UTC"))
    elif arr.type.tz is not None:
        zone = str(_local_zone())
        arr = pc.local_timestamp(arr.cast(pa.timestamp("us", tz=zone)))
    # Checked on the stored value: a naive 9999-12-31 23:30 in UTC-3 is year 10000 in UTC.
    problem = "datetime value(s) outside the years 1-9999"
    if settings.USE_TZ:
        problem += " once converted to UTC, as they are stored"
    _raise_if(_outside_years(target, column, series, arr, problem))
    return arr


def _outside_years(
    target: str, column: str, series: pd.Series, arr: pa.Array, problem: str
) -> LoadValidationError | None:
    """An error naming the dates or datetimes outside Python's range (years 1-9999).

    Arrow holds them, but the database driver cannot return them (SQLite reads
    them back as None) or refuses the whole write (PostgreSQL).
    """
    outside = outside_python_years(arr).fill_null(False)
    return _offenders(target, column, series.index, outside, _RawValues(series), problem)


def _convert_date(target: str, column: str, series: pd.Series) -> pa.Array:
    arr = _to_date32(target, column, series)
    _raise_if(_outside_years(target, column, series, arr, "date value(s) outside the years 1-9999"))
    return arr


def _to_date32(target: str, column: str, series: pd.Series) -> pa.Array:
    if series.dtype == object and _all(series, _is_date):
        try:
            return _to_arrow(series).cast(pa.date32())
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            raise _wrong_type(target, column, series, "dates", _is_date) from None
    if isinstance(series.dtype, pd.ArrowDtype) and pa.types.is_date(series.dtype.pyarrow_dtype):
        return _to_arrow(series).cast(pa.date32())
    if pd.api.types.is_string_dtype(series.dtype) and series.dtype != object:
        raise _wrong_type(target, column, series, "dates")
    arr = _to_timestamp(target, column, series, "dates")
    if arr.type.tz is not None:
        arr = pc.local_timestamp(arr.cast(pa.timestamp("us", tz=str(_local_zone()))))
    midnight = pc.floor_temporal(arr, unit="day")
    _raise_if(
        _offenders(
            target,
            column,
            series.index,
            pc.not_equal(midnight, arr),
            _RawValues(series),
            "datetime value(s) with a time of day for a DateField",
            "Convert them to dates first (.dt.date, or .dt.normalize() if midnight is meant).",
        )
    )
    return arr.cast(pa.date32())


def _convert_other(model_field: models.Field, series: pd.Series) -> list:
    # Rare field types (UUID, JSON, time, ...) go through the ORM's own
    # conversion on the portable path; this is not a hot path.
    return [None if _is_missing(v) else v for v in series.to_numpy(dtype=object)]


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value))


def convert_column(
    target: str,
    model_field: models.Field,
    column: str,
    series: pd.Series,
    *,
    ops: Any,
    decimal_rounding: str,
) -> tuple[str, Any]:
    """Validate ``series`` against ``model_field`` and return (kind, canonical values)."""
    kind = field_kind(model_field)
    target_field = model_field
    while target_field.is_relation:
        target_field = target_field.target_field
    if kind == "int":
        values = _convert_int(target, column, series, target_field.get_internal_type(), ops)
    elif kind == "decimal":
        values = _convert_decimal(
            target,
            column,
            series,
            target_field.max_digits,
            target_field.decimal_places,
            decimal_rounding,
        )
    elif kind == "float":
        values = _convert_float(target, column, series)
    elif kind == "str":
        values = _convert_str(target, column, series, target_field.max_length)
    elif kind == "bool":
        values = _convert_bool(target, column, series)
    elif kind == "date":
        values = _convert_date(target, column, series)
    elif kind == "datetime":
        values = _convert_datetime(target, column, series)
    else:
        values = _convert_other(model_field, series)
    if not model_field.null:
        nulls = values.is_null() if isinstance(values, pa.Array) else [v is None for v in values]
        hint = ""
        if kind == "str":
            hint = "Use '' for an empty text, or make the field null=True."
        _raise_if(
            _offenders(
                target,
                column,
                series.index,
                nulls,
                _RawValues(series),
                "null value(s) in a non-null field",
                hint,
            )
        )
    return kind, values


def constant_column(model_field: models.Field, value: Any, n_rows: int, *, ops: Any) -> tuple[str, Any]:
    """A column of ``n_rows`` copies of ``value`` (a default or auto_now's now)."""
    kind = field_kind(model_field)
    if kind == "other":
        return kind, [value] * n_rows
    if value is None:
        return kind, pa.nulls(n_rows, _null_type(model_field, kind))
    label = model_field.model._meta.label
    series = pd.Series([value], dtype=object)
    _, one = convert_column(label, model_field, model_field.name, series, ops=ops, decimal_rounding="reject")
    return kind, pa.repeat(one[0], n_rows)


def _null_type(model_field: models.Field, kind: str) -> pa.DataType:
    target = model_field
    while target.is_relation:
        target = target.target_field
    return {
        "int": pa.int64(),
        "float": pa.float64(),
        "str": pa.large_string(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "datetime": pa.timestamp("us", tz="UTC" if settings.USE_TZ else None),
    }.get(kind) or (pa.decimal128(target.max_digits, target.decimal_places))
