"""Column typing for the CSV reader: what Arrow parses natively, what we convert after.

Each selected column gets a :class:`ColumnPlan`:

- ``read_type``: the type asked of Arrow's CSV parser on the fast path. It is
  the final type when Arrow can parse the convention itself (ISO dates,
  decimals and floats with any decimal mark); it is ``string`` when a
  post-conversion is needed (thousands separators, a ``strptime`` format).
- ``reads_decimal_text``: the fast path reads the column as raw text and
  converts it with :func:`decimals_from_text` (plain decimals, compiled
  kernel), leaving anything else to Arrow's parser.
- ``convert(array)``: vectorized post-conversion and checks, raising
  :class:`ConversionError` at the first bad value (the fast path then hands the
  block to the slow path).
- ``convert_rowwise(array)``: the slow path, from raw bytes, marking each bad
  row with a readable reason instead of raising.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dw_analytics.core.exceptions import ConfigurationError
from transforms.dates import outside_python_years

try:  # compiled at install time; without it Arrow converts decimal texts itself
    from dw_analytics.extract._decimal_text import MAX_PRECISION as _TEXT_DECIMAL_MAX_PRECISION
    from dw_analytics.extract._decimal_text import parse_decimals as _parse_decimals
except ImportError:  # pragma: no cover - a build without a C compiler
    _parse_decimals = None
    _TEXT_DECIMAL_MAX_PRECISION = 0

#: Precision used when ``decimals`` gives only a scale.
DEFAULT_DECIMAL_PRECISION = 18

#: Unit of parsed dates.
DATE_TYPE = pa.timestamp("us")

#: Why a value holding a NUL byte is quarantined.
NUL_REASON = (
    "NUL byte (\\x00) in the value, which a database text column cannot hold "
    "(often padding or corruption from the exporting system)"
)
#: Why a date outside the years 1-9999 is quarantined.
YEAR_REASON = "year outside 1-9999, which Python, Django and the databases cannot hold"
_UNDECODABLE_REASON = "invalid UTF-8 bytes; if the file is not UTF-8 pass encoding= (e.g. 'cp1252') or encoding='auto'"

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")

_DTYPE_NAMES = {
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "uint8": pa.uint8(),
    "uint16": pa.uint16(),
    "uint32": pa.uint32(),
    "uint64": pa.uint64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "float": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
    "boolean": pa.bool_(),
    "str": pa.string(),
    "string": pa.string(),
    "object": pa.string(),
}


class ConversionError(Exception):
    """A value of a block cannot be converted (fast path only; never escapes the reader)."""


def arrow_type_for(column: str, dtype: Any) -> pa.DataType:
    """Map a user dtype (pandas name, numpy dtype, pyarrow type, ``pd.ArrowDtype``) to Arrow."""
    if isinstance(dtype, pa.DataType):
        return dtype
    if isinstance(dtype, pd.ArrowDtype):
        return dtype.pyarrow_dtype
    name = dtype if isinstance(dtype, str) else getattr(dtype, "name", str(dtype))
    arrow_type = _DTYPE_NAMES.get(str(name).lower())
    if arrow_type is None:
        raise ConfigurationError(
            f"dtypes[{column!r}] = {dtype!r} is not supported; use one of "
            f"{sorted(_DTYPE_NAMES)}, a pyarrow type or pd.ArrowDtype; money goes in decimals=, "
            "dates in dates="
        )
    return arrow_type


def decimal_type_for(column: str, spec: Any) -> pa.Decimal128Type:
    """``scale`` or ``(precision, scale)`` -> ``decimal128``."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        precision, scale = DEFAULT_DECIMAL_PRECISION, spec
    elif isinstance(spec, tuple) and len(spec) == 2 and all(isinstance(v, int) for v in spec):
        precision, scale = spec
    else:
        raise ConfigurationError(f"decimals[{column!r}] = {spec!r}: give a scale (e.g. 2) or (precision, scale)")
    if not (1 <= precision <= 38 and 0 <= scale <= precision):
        raise ConfigurationError(
            f"decimals[{column!r}] = {spec!r}: need 1 <= precision <= 38 and 0 <= scale <= precision"
        )
    return pa.decimal128(precision, scale)


@dataclass
class ColumnPlan:
    """How one column is read; see the module docstring."""

    name: str
    target: pa.DataType
    date_format: str | None = None  # strptime format; None = ISO 8601 (for date columns)
    thousands: str | None = None  # separator to strip (numeric columns only)
    decimal: str = "."

    @property
    def is_numeric(self) -> bool:
        t = self.target
        return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)

    @property
    def is_text(self) -> bool:
        return pa.types.is_string(self.target) or pa.types.is_large_string(self.target)

    @property
    def is_temporal(self) -> bool:
        return pa.types.is_timestamp(self.target) or pa.types.is_date(self.target)

    @property
    def needs_strings(self) -> bool:
        """True when Arrow's parser cannot produce the final type on its own."""
        return self.date_format is not None or (self.is_numeric and self.thousands is not None)

    @property
    def read_type(self) -> pa.DataType:
        return pa.string() if self.needs_strings else self.target

    @property
    def reads_decimal_text(self) -> bool:
        """True when the fast path may read the raw text and convert it with :func:`decimals_from_text`."""
        t = self.target
        return (
            _parse_decimals is not None
            and pa.types.is_decimal128(t)
            and t.precision <= _TEXT_DECIMAL_MAX_PRECISION  # 18: 10**18 - 1 fits in int64
            and not self.needs_strings
            and self.decimal.isascii()  # the kernel compares single bytes
        )

    # --- fast path -------------------------------------------------------------

    def convert(self, array: pa.ChunkedArray, *, nul_bytes: bool = True) -> pa.ChunkedArray:
        """Post-convert and check a fast-path column; raise ConversionError on any bad value.

        ``nul_bytes=False`` says the block holds no NUL byte at all, which spares
        text columns their per-value search (a tenth of the parse time).
        """
        if self.is_text:
            if nul_bytes and pc.any(pc.match_substring(array, "\x00")).as_py():
                raise ConversionError(self.name)
            return array
        if self.needs_strings:
            array = self._convert_strings(array)
        if self.is_temporal:
            # Arrow reads the year 0000; the earliest and latest values tell if any is out.
            extremes = pc.min_max(array)
            if pc.any(outside_python_years(pa.array([extremes["min"], extremes["max"]], array.type))).as_py():
                raise ConversionError(self.name)
        return array

    def _convert_strings(self, array: pa.ChunkedArray) -> pa.ChunkedArray:
        if self.date_format is not None:
            parsed = pc.strptime(array, format=self.date_format, unit="us", error_is_null=True)
            if parsed.null_count != array.null_count:
                raise ConversionError(self.name)
            return parsed.cast(self.target)
        try:
            return pc.cast(self._normalize_number(array), self.target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ConversionError(self.name) from exc

    def _normalize_number(self, strings: pa.Array | pa.ChunkedArray):
        if self.thousands:
            # A thousands mark must group digits by three ("1.234,56"); anywhere else it is
            # a wrong separator ("10.50" in a decimal-comma file), never silently dropped.
            grouped = (
                rf"^[ \t]*[+-]?\d{{1,3}}({re.escape(self.thousands)}\d{{3}})+({re.escape(self.decimal)}\d*)?[ \t]*$"
            )
            misplaced = pc.and_kleene(
                pc.match_substring(strings, self.thousands), pc.invert(pc.match_substring_regex(strings, grouped))
            )
            strings = pc.if_else(misplaced, pa.scalar("misplaced thousands separator", strings.type), strings)
            strings = pc.replace_substring(strings, self.thousands, "")
        if self.decimal != ".":
            strings = pc.replace_substring(strings, self.decimal, ".")
        return strings

    # --- slow path -------------------------------------------------------------

    def convert_rowwise(
        self, raw: pa.Array, undecodable: np.ndarray | None = None
    ) -> tuple[pa.Array, np.ndarray, dict[int, str]]:
        """Convert raw bytes; return (values, bad-row mask, {row: reason}).

        ``undecodable`` marks the rows whose bytes were not UTF-8 when ``raw`` was
        read from a copy with those bytes replaced (see ``replace_undecodable``).
        """
        reasons: dict[int, str] = {}
        strings, bad = cast_rowwise(raw, pa.string())
        if undecodable is not None:
            bad |= undecodable
        for i in np.flatnonzero(bad):
            reasons[int(i)] = _UNDECODABLE_REASON
        nul = np.asarray(pc.match_substring(strings, "\x00").fill_null(False), dtype=bool) & ~bad
        for i in np.flatnonzero(nul):
            reasons[int(i)] = NUL_REASON
        bad |= nul
        if self.is_text:
            return strings.cast(self.target), bad, reasons
        # Arrow's CSV parser ignores blanks around non-string values; do the same.
        strings = pc.utf8_trim(strings, " \t")
        if self.date_format is not None:
            values = pc.strptime(strings, format=self.date_format, unit="us", error_is_null=True)
            failed = np.asarray(pc.and_(pc.is_null(values), pc.is_valid(strings)), dtype=bool)
            values = values.cast(self.target)
        else:
            if self.is_numeric:
                strings = self._normalize_number(strings)
            values, failed = cast_rowwise(strings, self.target)
        for i in np.flatnonzero(failed & ~bad):
            text = raw[int(i)].as_py().decode("utf-8", "replace").strip(" \t")
            reasons[int(i)] = self.reason(text)
        if self.is_temporal:
            outside = np.asarray(outside_python_years(values).fill_null(False), dtype=bool) & ~failed & ~bad
            for i in np.flatnonzero(outside):
                reasons[int(i)] = YEAR_REASON
            failed = failed | outside
        return values, bad | failed, reasons

    def reason(self, text: str) -> str:
        """Why ``text`` does not fit this column (only called for bad values)."""
        target = self.target
        if self.date_format is not None:
            return f"not a date in format {self.date_format!r}"
        if pa.types.is_timestamp(target) or pa.types.is_date(target):
            return "not an ISO 8601 date (YYYY-MM-DD or YYYY-MM-DD HH:MM:SS)"
        number = self._normalize_number(pa.array([text])).to_pylist()[0] if self.is_numeric else text
        if pa.types.is_decimal(target):
            if not _NUMBER.fullmatch(number):
                return f"not a decimal number (decimal mark {self.decimal!r})"
            mantissa = number.lstrip("+-").split("e")[0].split("E")[0]
            places = len(mantissa.split(".")[1].rstrip("0")) if "." in mantissa else 0
            if places > target.scale:
                return (
                    f"has {places} decimal places, more than the column's scale {target.scale} "
                    "(values are never rounded)"
                )
            return f"out of range for decimal({target.precision}, {target.scale})"
        if pa.types.is_integer(target):
            if _INTEGER.fullmatch(number):
                return f"out of range for {target}"
            return "not an integer"
        if pa.types.is_floating(target):
            return f"not a number (decimal mark {self.decimal!r})"
        if pa.types.is_boolean(target):
            return "not a boolean (true/false/1/0)"
        return f"cannot be read as {target}"


def decimals_from_text(texts: pa.ChunkedArray, target: pa.Decimal128Type, decimal: str = ".") -> pa.ChunkedArray | None:
    """Exact ``decimal128`` values of plain decimal texts, or None when one is not plain.

    Plain is ``[+-]digits[<decimal>digits]`` (``"1234.50"``, ``"-.5"``, ``"7"``) with
    at most ``target.precision`` significant digits; places beyond the scale must
    be zeros. Nulls stay null. Anything else (blanks, exponents, a value that does
    not fit) returns None: the caller lets Arrow's general parser decide. Runs
    outside the GIL, about ten times faster than Arrow's conversion.

    Example:
        >>> import pyarrow as pa
        >>> texts = pa.chunked_array([["1,50", None, "-3"]], pa.binary())
        >>> decimals_from_text(texts, pa.decimal128(18, 2), ",").to_pylist()
        [Decimal('1.50'), None, Decimal('-3.00')]
    """
    converted = []
    for chunk in texts.chunks:
        validity, offsets, data = chunk.buffers()
        values = _parse_decimals(
            offsets,
            b"" if data is None else data,
            validity,
            chunk.offset,
            len(chunk),
            target.precision,
            target.scale,
            ord(decimal),
        )
        if isinstance(values, int):
            return None
        buffers = [validity, pa.py_buffer(values)]
        converted.append(pa.Array.from_buffers(target, len(chunk), buffers, chunk.null_count, chunk.offset))
    return pa.chunked_array(converted, target)


def cast_rowwise(array: pa.Array, target: pa.DataType) -> tuple[pa.Array, np.ndarray]:
    """Cast ``array`` to ``target``; values that fail become null and are flagged.

    Casts whole ranges and bisects only the ranges that fail, so a few bad
    values in a large array cost a few extra vectorized casts, not a Python loop.
    """
    n = len(array)
    failed = np.zeros(n, dtype=bool)
    pieces: list[tuple[int, pa.Array]] = []
    stack = [(0, n)]
    while stack:
        start, stop = stack.pop()
        if start == stop:
            continue
        piece = array.slice(start, stop - start)
        try:
            pieces.append((start, pc.cast(piece, target)))
            continue
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        if stop - start == 1:
            failed[start] = True
            pieces.append((start, pa.nulls(1, target)))
            continue
        middle = (start + stop) // 2
        stack.append((middle, stop))
        stack.append((start, middle))
    pieces.sort(key=lambda item: item[0])
    values = pa.concat_arrays([p for _, p in pieces]) if pieces else pa.array([], type=target)
    return values, failed
