"""Column typing shared by the database readers (``read_queryset``, ``read_sql``).

A :class:`ColumnSpec` says what pandas dtype a column gets and how a column of
raw driver values (or an Arrow array) becomes that dtype, with whole-column
(vectorized) conversions. The rules, documented once for every reader:

========================  ===============================================================
source type               pandas dtype
========================  ===============================================================
integers, foreign keys    ``int64``; ``Int64`` (nullable) when the column may hold NULL
boolean                   ``bool``; ``boolean`` (nullable) when the column may hold NULL
decimal(p, s)             ``ArrowDtype(decimal128(p, s))`` exact (``float64`` on request);
                          unknown scale: ``decimal128(38, scale of the values)``
datetime                  ``datetime64[us, settings.TIME_ZONE]`` tz-aware (UTC without
                          Django); naive database timestamps are taken as UTC under USE_TZ
date                      ``ArrowDtype(date32)`` (a calendar date, no time, no zone)
time                      ``ArrowDtype(time64[us])``
text                      ``str`` (pandas 3's default string dtype, missing = NaN)
choices                   ``category`` whose categories are the declared choices
float                     ``float64``
anything else             ``object`` holding the values the ORM itself would return
========================  ===============================================================
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dw_analytics.extract.exceptions import ExtractError

STRING_DTYPE = pd.StringDtype(storage="pyarrow", na_value=np.nan)
DATE_DTYPE = pd.ArrowDtype(pa.date32())
TIME_DTYPE = pd.ArrowDtype(pa.time64("us"))
MAX_DECIMAL_PRECISION = 38

# Kinds a column can have; each maps to one dtype rule above.
INT, FLOAT, BOOL, DECIMAL, DATETIME, DATE, TIME, STRING, OBJECT = (
    "int",
    "float",
    "bool",
    "decimal",
    "datetime",
    "date",
    "time",
    "string",
    "object",
)


@dataclass
class ColumnSpec:
    """How one result column is typed.

    Attributes:
        name: the column name in the DataFrame.
        kind: one of the kinds above (``int``, ``decimal``...).
        nullable: whether the column may hold NULL (picks ``Int64`` over ``int64``).
        precision: decimal precision (``None`` when unknown).
        scale: decimal scale (``None`` when unknown: inferred from the values).
        tz: the zone tz-aware timestamps are shown in.
        categories: declared choices, for a categorical column.
        decimals_as_float: return decimals as ``float64`` (lossy, opt-in).
        naive_tz: the zone naive database timestamps are in (UTC under ``USE_TZ``).
        fallback: per-value converter for ``object`` columns (the ORM's own).
    """

    name: str
    kind: str
    nullable: bool = True
    precision: int | None = None
    scale: int | None = None
    tz: str = "UTC"
    categories: list[Any] | None = None
    decimals_as_float: bool = False
    naive_tz: str = "UTC"
    fallback: Callable[[Any], Any] | None = field(default=None, repr=False)

    @property
    def needs_orm_values(self) -> bool:
        """True when values must first pass through the ORM's per-value converters."""
        return self.fallback is not None

    @property
    def dtype(self) -> Any:
        """The pandas dtype of this column."""
        base = self._base_dtype()
        if self.categories is not None:
            return pd.CategoricalDtype(pd.Index(self.categories, dtype=base), ordered=False)
        return base

    def _base_dtype(self) -> Any:
        if self.kind == INT:
            return pd.Int64Dtype() if self.nullable else np.dtype("int64")
        if self.kind == BOOL:
            return pd.BooleanDtype() if self.nullable else np.dtype("bool")
        if self.kind == FLOAT:
            return np.dtype("float64")
        if self.kind == DECIMAL:
            if self.decimals_as_float:
                return np.dtype("float64")
            return pd.ArrowDtype(self.arrow_decimal_type())
        if self.kind == DATETIME:
            return pd.DatetimeTZDtype(unit="us", tz=self.tz)
        if self.kind == DATE:
            return DATE_DTYPE
        if self.kind == TIME:
            return TIME_DTYPE
        if self.kind == STRING:
            return STRING_DTYPE
        return np.dtype("object")

    def arrow_decimal_type(self) -> pa.Decimal128Type:
        precision = self.precision or MAX_DECIMAL_PRECISION
        scale = self.scale if self.scale is not None else 0
        return pa.decimal128(min(max(precision, scale, 1), MAX_DECIMAL_PRECISION), scale)

    def empty(self) -> pd.Series:
        """An empty column of the right dtype."""
        return pd.Series([], dtype=self.dtype, name=self.name)

    def convert(self, values: Sequence[Any]) -> pd.Series:
        """Turn a column of driver values (Python objects) into a typed Series."""
        return self._guarded(self._from_python, values)

    def convert_arrow(self, array: pa.Array | pa.ChunkedArray) -> pd.Series:
        """Turn an Arrow column (COPY, ADBC, or text from the driver) into a typed Series."""
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        if isinstance(array, pa.ExtensionArray):
            array = array.storage  # e.g. ADBC's PostgreSQL numeric: text in an opaque type
        return self._guarded(self._from_arrow, array)

    def _guarded(self, convert: Callable[[Any], Any], values: Any) -> pd.Series:
        try:
            series = pd.Series(convert(values), name=self.name, copy=False)
            if self.categories is not None:
                series = self._categorical(series)
            return series
        except ExtractError:
            raise
        except (TypeError, ValueError, ArithmeticError, pa.ArrowException) as exc:
            raise ExtractError(
                f"Column {self.name!r}: cannot convert the database values to {self.dtype} "
                f"({exc}). Check the field type, or select the column with a cast.",
                column=self.name,
            ) from exc

    # -- Python values -> Arrow ------------------------------------------------------

    def _from_python(self, values: Sequence[Any]) -> Any:
        kind = self.kind
        if kind == OBJECT:
            out = np.empty(len(values), dtype=object)
            out[:] = [self.fallback(v) for v in values] if self.fallback else list(values)
            return out
        if kind == INT:
            if not self.nullable:
                try:
                    return np.asarray(values).astype(np.int64)
                except (TypeError, ValueError):
                    pass  # a NULL where the model says none: keep it, as a nullable column
            return self._from_arrow(pa.array(values, type=pa.int64()))
        if kind == FLOAT:
            return self._from_arrow(pa.array(values, type=pa.float64()))
        if kind == BOOL:
            try:
                array = pa.array(values, type=pa.bool_())
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                array = pa.array(values, type=pa.int64())  # SQLite: 0 / 1
            return self._from_arrow(array)
        if kind == DECIMAL:
            if self.scale is None:
                # Unknown scale (e.g. an Avg over a decimal): keep every digit the
                # database returned, typed from the values themselves.
                array = pa.array([_to_decimal(v) for v in values])
            else:
                array = decimal_array(values, self.arrow_decimal_type())
            return self._from_arrow(array)
        if kind == DATETIME:
            target = pa.timestamp("us", tz="UTC" if self.naive_tz == "UTC" else None)
            return self._from_arrow(_python_to_arrow(values, target))
        if kind == DATE:
            return self._from_arrow(_python_to_arrow(values, pa.date32()))
        if kind == TIME:
            return self._from_arrow(_python_to_arrow(values, pa.time64("us")))
        try:
            array = pa.array(values, type=pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            array = pa.array([None if v is None else str(v) for v in values], type=pa.string())
        return self._from_arrow(array)

    # -- Arrow -> pandas ---------------------------------------------------------------

    def _from_arrow(self, array: pa.Array) -> Any:
        kind, atype = self.kind, array.type
        if pa.types.is_null(atype):
            return self.empty().reindex(range(len(array))).array
        if kind == INT:
            return _arrow_int_to_pandas(array.cast(pa.int64()), self.nullable)
        if kind == FLOAT:
            return array.cast(pa.float64()).to_numpy(zero_copy_only=False)
        if kind == BOOL:
            if not pa.types.is_boolean(atype):
                array = pc.not_equal(array.cast(pa.int64()), 0)  # SQLite: 0 / 1
            if self.nullable or array.null_count:
                return pd.array(array, dtype=pd.BooleanDtype())
            return array.to_numpy(zero_copy_only=False)
        if kind == DECIMAL:
            return self._decimal_from_arrow(array)
        if kind == DATETIME:
            if pa.types.is_string(atype) or pa.types.is_large_string(atype):
                array = _text_to_timestamp(array)
            return self.arrow_timestamps_to_pandas(array)
        if kind == DATE:
            if not pa.types.is_date32(atype):
                array = array.cast(pa.date32())
            return pd.array(array, dtype=DATE_DTYPE)
        if kind == TIME:
            if pa.types.is_string(atype) or pa.types.is_large_string(atype):
                array = _python_to_arrow(array.to_pylist(), pa.time64("us"))
            return pd.array(array.cast(pa.time64("us")), dtype=TIME_DTYPE)
        if kind == STRING:
            if not pa.types.is_string(atype):
                array = array.cast(pa.string())
            return pd.array(array, dtype=STRING_DTYPE)
        return np.array(array.to_pylist(), dtype=object)

    def _decimal_from_arrow(self, array: pa.Array) -> Any:
        atype = array.type
        if self.scale is None:
            scale = atype.scale if pa.types.is_decimal(atype) else 0
            target = pa.decimal128(MAX_DECIMAL_PRECISION, scale)
        else:
            target = self.arrow_decimal_type()
        if pa.types.is_floating(atype) or pa.types.is_integer(atype):
            array = float_to_decimal_array(array.cast(pa.float64()), target)
        elif (pa.types.is_string(atype) or pa.types.is_large_string(atype)) and (
            self.scale is not None and target.precision <= 15
        ):
            # Up to 15 significant digits, a double parse + rounding at the scale is
            # exact (float_to_decimal_array) and several times faster than decimal text.
            try:
                array = float_to_decimal_array(array.cast(pa.float64()), target)
            except (pa.ArrowInvalid, ExtractError):
                array = decimal_array(array.to_pylist(), target)
        elif pa.types.is_string(atype) or pa.types.is_large_string(atype):
            try:
                array = array.cast(target)  # exact text parsing
            except pa.ArrowInvalid:
                array = decimal_array(array.to_pylist(), target)  # more places: round half-even
        elif atype != target:
            try:
                array = array.cast(target)
            except pa.ArrowInvalid:
                array = decimal_array(array.to_pylist(), target)
        if self.decimals_as_float:
            return array.cast(pa.float64()).to_numpy(zero_copy_only=False)
        return pd.array(array, dtype=pd.ArrowDtype(array.type))

    def arrow_timestamps_to_pandas(self, array: pa.Array) -> Any:
        """An Arrow timestamp array as ``datetime64[us, tz]`` (naive = ``naive_tz``)."""
        if array.type.unit != "us":
            array = array.cast(pa.timestamp("us", tz=array.type.tz))
        series = array.to_pandas()  # NaT for nulls, keeps the unit
        if array.type.tz is None:
            series = series.dt.tz_localize(self.naive_tz)
        return series.dt.tz_convert(self.tz).array

    def _categorical(self, series: pd.Series) -> pd.Series:
        dtype = self.dtype
        result = series.astype(dtype)
        lost = result.isna() & series.notna()
        if lost.any():
            # A value outside the declared choices (the database does not enforce
            # them): keep it as an extra category rather than silently dropping it.
            extra = sorted(set(series[lost].tolist()) - set(self.categories))
            base = pd.Index([*self.categories, *extra], dtype=self._base_dtype())
            result = series.astype(pd.CategoricalDtype(base, ordered=False))
        return result


def _python_to_arrow(values: Sequence[Any], arrow_type: pa.DataType) -> pa.Array:
    """Temporal Python values (or their ISO text, as SQLite keeps them) as Arrow."""
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, dt.datetime) and sample.tzinfo is not None:
        # pa.array() would read an aware datetime's wall clock as if it were UTC;
        # pandas converts each value by its own offset.
        instants = pd.to_datetime(pd.Series(values, dtype=object), utc=True)
        return pa.array(instants.astype("datetime64[us, UTC]"))
    try:
        return pa.array(values, type=arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    if pa.types.is_time(arrow_type):
        parsed = [v if v is None or isinstance(v, dt.time) else dt.time.fromisoformat(v) for v in values]
        return pa.array(parsed, type=arrow_type)
    text = pa.array([v if v is None or isinstance(v, str) else str(v) for v in values], pa.string())
    if pa.types.is_timestamp(arrow_type):
        return _text_to_timestamp(text)
    return text.cast(arrow_type)


def _text_to_timestamp(text: pa.Array) -> pa.Array:
    """ISO timestamps as text: naive ones (SQLite) stay naive, ones with an offset become UTC."""
    try:
        return text.cast(pa.timestamp("us"))
    except pa.ArrowInvalid:
        return text.cast(pa.timestamp("us", tz="UTC"))


def _arrow_int_to_pandas(array: pa.Array, nullable: bool) -> Any:
    if not nullable and not array.null_count:
        return array.to_numpy(zero_copy_only=False)
    data = array.fill_null(0).to_numpy(zero_copy_only=False)
    mask = array.is_null().to_numpy(zero_copy_only=False)
    return pd.arrays.IntegerArray(data, mask)


def _to_decimal(value: Any) -> Any:
    if value is None or isinstance(value, decimal.Decimal):
        return value
    # repr of a float is the shortest text that reads back to it: the decimal
    # the database meant, not the float's binary expansion.
    return decimal.Decimal(repr(value) if isinstance(value, float) else str(value))


def decimal_array(values: Sequence[Any], arrow_type: pa.Decimal128Type) -> pa.Array:
    """Build an exact ``decimal128`` Arrow array from driver values.

    ``Decimal`` values (PostgreSQL, MySQL) convert exactly. SQLite returns a
    decimal column as ``float`` (or ``int``, or ``str`` when the text could not be
    stored as a number): floats are scaled by ``10**scale`` and rounded to the
    nearest integer, which is exact while a value has at most 15 significant
    digits — the most a SQLite REAL keeps anyway (Django's own SQLite converter
    makes the same assumption). Text is parsed exactly.

    Example:
        >>> decimal_array([0.1, 12, None], pa.decimal128(14, 2)).to_pylist()
        [Decimal('0.10'), Decimal('12.00'), None]
    """
    first = next((v for v in values if v is not None), None)
    try:
        if isinstance(first, decimal.Decimal):
            return pa.array(values, type=arrow_type)
        if isinstance(first, str):
            return pa.array(values, type=pa.string()).cast(arrow_type)
        if first is not None:
            return float_to_decimal_array(pa.array(values, type=pa.float64()), arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass  # mixed kinds, or more places than the scale: the exact path below
    quantum = decimal.Decimal(1).scaleb(-arrow_type.scale)
    exact = [None if v is None else _to_decimal(v).quantize(quantum) for v in values]
    return pa.array(exact, type=arrow_type)


def float_to_decimal_array(floats: pa.Array, arrow_type: pa.Decimal128Type) -> pa.Array:
    """Exact ``decimal128`` from floats holding decimals of at most 15 significant digits.

    Rounds ``x * 10**scale`` to the nearest integer (the relative error of the
    float and of the product stays below 2**-52, so below 0.5 at 15 digits) and
    writes that integer as the decimal's unscaled value.
    """
    scale = arrow_type.scale
    nulls = floats.is_null()
    scaled = np.rint(floats.to_numpy(zero_copy_only=False) * (10.0**scale))
    valid = ~nulls.to_numpy(zero_copy_only=False)
    bound = min(10.0**arrow_type.precision, 2.0**63)
    bad = valid & ~(np.abs(np.nan_to_num(scaled, nan=np.inf)) < bound)
    if bad.any():
        value = floats[int(np.flatnonzero(bad)[0])].as_py()
        raise ExtractError(f"value {value!r} does not fit {arrow_type} (NaN, infinite or too large)")
    unscaled = np.where(valid, np.nan_to_num(scaled), 0).astype(np.int64)
    return int64_to_decimal_array(unscaled, arrow_type, nulls)


def int64_to_decimal_array(
    unscaled: np.ndarray, arrow_type: pa.Decimal128Type, nulls: pa.Array | None = None
) -> pa.Array:
    """A ``decimal128`` array whose unscaled values are ``unscaled`` (no rescaling)."""
    n = len(unscaled)
    words = np.empty((n, 2), dtype=np.int64)
    words[:, 0] = unscaled
    words[:, 1] = unscaled >> 63  # sign extension to 128 bits (little-endian)
    validity = None
    null_count = 0
    if nulls is not None and nulls.true_count:
        valid = pa.array(~nulls.to_numpy(zero_copy_only=False), type=pa.bool_())
        validity = valid.buffers()[1]
        null_count = nulls.true_count
    return pa.Array.from_buffers(arrow_type, n, [validity, pa.py_buffer(words)], null_count=null_count)


def frame_from_columns(specs: Sequence[ColumnSpec], columns: Sequence[Any]) -> pd.DataFrame:
    """Assemble typed columns into a DataFrame (an empty, typed one when there are no rows)."""
    if not columns:
        return pd.DataFrame({spec.name: spec.empty() for spec in specs})
    data = {spec.name: spec.convert(values) for spec, values in zip(specs, columns, strict=True)}
    return pd.DataFrame(data, copy=False)


def rows_to_frame(specs: Sequence[ColumnSpec], rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """Transpose driver rows into columns once (in C), then type each column as a whole."""
    if not rows:
        return frame_from_columns(specs, [])
    if not isinstance(rows, list) or not isinstance(rows[0], tuple):
        rows = [tuple(row) for row in rows]
    matrix = to_object_matrix(rows)
    return frame_from_columns(specs, [matrix[:, i] for i in range(len(specs))])


def to_object_matrix(rows: list[tuple]) -> np.ndarray:
    """A 2-D object array of the rows: pandas' C routine, about 5x ``zip(*rows)``."""
    try:
        from pandas._libs.lib import to_object_array_tuples
    except ImportError:  # pragma: no cover - private pandas API moved
        matrix = np.empty((len(rows), len(rows[0])), dtype=object)
        matrix[:] = rows
        return matrix
    return to_object_array_tuples(rows)
