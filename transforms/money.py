"""Exact money helpers: Arrow ``decimal128`` columns from and to scaled integers.

Money is held as ``pd.ArrowDtype(pa.decimal128(p, s))``. Building such a
column from integer cents (or reading cents back) goes straight through the
16-byte two's-complement buffer, so it is vectorized and exact.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa


def money_dtype(precision: int = 14, scale: int = 2) -> pd.ArrowDtype:
    """The pandas dtype of an exact money column.

    Example:
        >>> money_dtype(14, 2)
        decimal128(14, 2)[pyarrow]
    """
    return pd.ArrowDtype(pa.decimal128(precision, scale))


def scaled_to_decimal(
    units: np.ndarray | pd.Series,
    precision: int = 14,
    scale: int = 2,
    index: pd.Index | None = None,
    *,
    null_mask: np.ndarray | None = None,
) -> pd.Series:
    """Exact decimals from integers counted in ``10**-scale`` units (cents for scale 2).

    Nulls where ``null_mask`` is True (those units are ignored).

    Example:
        >>> scaled_to_decimal(np.array([12345, -5]), 14, 2).tolist()
        [Decimal('123.45'), Decimal('-0.05')]
        >>> scaled_to_decimal(np.array([1, 2]), null_mask=np.array([False, True])).tolist()
        [Decimal('0.01'), <NA>]
    """
    if index is None and isinstance(units, pd.Series):
        index = units.index
    array = decimal_array(units, precision, scale, null_mask=null_mask)
    return pd.Series(pd.arrays.ArrowExtensionArray(array), index=index, copy=False)


def decimal_array(
    units: np.ndarray | pd.Series, precision: int, scale: int, *, null_mask: np.ndarray | None = None
) -> pa.Array:
    """The ``decimal128(precision, scale)`` Arrow array of int64 ``10**-scale`` units.

    Written straight into the 16-byte two's-complement buffer (no per-value
    Python); raises OverflowError when a value exceeds the precision.

    Example:
        >>> decimal_array(np.array([150, 7]), 14, 2, null_mask=np.array([False, True])).to_pylist()
        [Decimal('1.50'), None]
    """
    low = np.ascontiguousarray(np.asarray(units, dtype=np.int64))
    validity = None
    if null_mask is not None and np.any(null_mask):
        null_mask = np.asarray(null_mask, dtype=bool)
        low = np.where(null_mask, 0, low)
        validity = pa.array(~null_mask).buffers()[1]  # a boolean array's values are a bitmap
    limit = 10**precision
    if len(low) and (int(low.max()) >= limit or int(low.min()) <= -limit):
        raise OverflowError(f"value does not fit decimal128({precision}, {scale})")
    pairs = np.empty((len(low), 2), dtype=np.int64)
    pairs[:, 0] = low
    pairs[:, 1] = low >> 63  # sign extension: the high 64 bits of the 128-bit integer
    return pa.Array.from_buffers(pa.decimal128(precision, scale), len(low), [validity, pa.py_buffer(pairs)])


def decimal_to_scaled(values: pd.Series) -> np.ndarray:
    """The int64 count of ``10**-scale`` units of a decimal128 column (nulls not allowed).

    Example:
        >>> decimal_to_scaled(scaled_to_decimal(np.array([1999, 5]))).tolist()
        [1999, 5]
    """
    array = pa.chunked_array(pa.array(values)).combine_chunks()
    if not pa.types.is_decimal(array.type):
        raise TypeError(f"expected a decimal128 column, got {array.type}")
    if array.null_count:
        raise ValueError("decimal_to_scaled needs a column without nulls")
    words = np.frombuffer(array.buffers()[1], dtype=np.int64)[2 * array.offset : 2 * (array.offset + len(array))]
    low, high = words[0::2], words[1::2]
    if not np.array_equal(high, low >> 63):
        raise OverflowError("decimal value does not fit in int64 units")
    return low.copy()
