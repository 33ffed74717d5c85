"""Chunk-combinable group-by: named aggregation over an iterable of DataFrames.

``rollup`` is pandas' ``groupby(by).agg(name=(column, func))`` for data that
arrives in chunks (a streamed CSV, a chunked query, Dask partitions). Every
supported aggregation is computed from *partial aggregates* that combine
exactly, so the answer does not depend on how the data was chunked:

============  ===================================  ==============================
func          partial state per group               final value
============  ===================================  ==============================
``size``      number of rows                        sum of the row counts
``count``     number of non-null values             sum of the counts
``sum``       sum of non-null values                sum of the sums
``mean``      sum and count of non-null values      combined sum / combined count
``min``       minimum of non-null values            minimum of the minimums
``max``       maximum of non-null values            maximum of the maximums
============  ===================================  ==============================

The three building blocks are public so that other engines (the star-schema
fact build, a Dask ``reduction``) run exactly the same logic::

    partial = partial_aggregate(chunk, by, aggs)       # per chunk / partition
    partial = combine_partials([p1, p2, ...], by, aggs)  # associative, repeatable
    result = finalize(partial, by, aggs)

and ``rollup(chunks, by, **aggs) == finalize(combine_partials(map(partial_aggregate)))``.

Semantics (the same as pandas ``groupby(by, dropna=True, observed=True)``):

- Rows whose key has a null in any ``by`` column are dropped (pandas'
  ``dropna=True``); they still do not count in ``size``.
- ``count`` and every value aggregation skip nulls (``NaN`` in float columns is
  null); ``size`` counts rows. The ``sum`` of a group without values is 0; its
  ``min``, ``max`` and ``mean`` are null.
- The result has one row per group, the ``by`` columns as ordinary columns
  (with their input dtypes), sorted by ``by`` (strings in code-point order),
  and a fresh ``RangeIndex``.

Result dtypes:

- ``size`` and ``count``: ``int64``.
- ``sum``: ``int64`` for integer and boolean columns, ``float64`` for floats;
  columns backed by pyarrow (``pd.ArrowDtype``) stay pyarrow-backed
  (``int64[pyarrow]``, ``double[pyarrow]``).
- Decimal columns (``pd.ArrowDtype(pa.decimal128(p, s))`` or ``object`` columns of
  :class:`decimal.Decimal`) are summed exactly and widened to
  ``pd.ArrowDtype(pa.decimal128(38, s))`` so a sum cannot overflow the input
  precision. Their ``mean`` is a decimal too: ``decimal128(38, s)``, the exact
  quotient rounded **half-even** to the column's scale ``s``.
- ``mean`` of other numeric columns: ``float64`` (``double[pyarrow]`` for
  pyarrow-backed columns).
- ``min`` / ``max``: the input column's dtype.

The heavy lifting runs in Arrow's multi-threaded hash aggregation
(``pyarrow.Table.group_by``); pyarrow-backed columns enter it without a copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dw_analytics.core.exceptions import ConfigurationError
from transforms.money import decimal_array

__all__ = [
    "SUPPORTED_FUNCS",
    "combine_partials",
    "finalize",
    "normalize_aggs",
    "partial_aggregate",
    "rollup",
]

#: Aggregation functions ``rollup`` can combine exactly across chunks.
SUPPORTED_FUNCS = ("size", "count", "sum", "mean", "min", "max")

#: Partial states each final function needs.
_STATES_FOR = {
    "size": ("size",),
    "count": ("count",),
    "sum": ("sum",),
    "mean": ("sum", "count"),
    "min": ("min",),
    "max": ("max",),
}

# How a partial state combines with itself across partials.
_COMBINE_WITH = {"size": "sum", "count": "sum", "sum": "sum", "min": "min", "max": "max"}

_SIZE_COLUMN = "__size"

# Combine buffered partials once this many are pending: memory stays bounded by
# a small multiple of the number of groups, whatever the number of chunks.
_COMBINE_EVERY = 8

Aggs = Mapping[str, tuple[str, str]]


def normalize_aggs(aggs: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Validate named aggregations and return them as ``{name: (column, func)}``.

    Args:
        aggs: ``{output_name: (column, func)}``; ``func`` is one of
            :data:`SUPPORTED_FUNCS`. ``pd.NamedAgg`` tuples are accepted.

    Returns:
        A plain dict with the same order.

    Raises:
        ConfigurationError: no aggregation, a malformed spec or an unsupported function.

    Example:
        >>> normalize_aggs({"n": ("id", "size")})
        {'n': ('id', 'size')}
    """
    if not aggs:
        raise ConfigurationError("rollup needs at least one named aggregation, e.g. total=('total', 'sum')")
    normalized: dict[str, tuple[str, str]] = {}
    for name, spec in aggs.items():
        if not (isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], str)):
            raise ConfigurationError(f"aggregation {name!r} must be a (column, func) pair, got {spec!r}")
        column, func = spec
        if func not in SUPPORTED_FUNCS:
            raise ConfigurationError(
                f"aggregation {name!r}: unsupported function {func!r}; choose one of {', '.join(SUPPORTED_FUNCS)}"
            )
        normalized[name] = (column, func)
    return normalized


def partial_aggregate(df: pd.DataFrame, by: str | Sequence[str], aggs: Aggs) -> pd.DataFrame:
    """Aggregate one chunk into a partial frame that :func:`combine_partials` can merge.

    The partial frame has the ``by`` columns (input dtypes, no null keys) and
    one column per partial state: ``"<column>__sum"``, ``"<column>__count"``,
    ``"<column>__min"``, ``"<column>__max"`` and ``"__size"``. Its row order is
    unspecified.

    Args:
        df: one chunk.
        by: key column name(s).
        aggs: ``{name: (column, func)}`` as for :func:`rollup`.

    Returns:
        The partial frame.

    Example:
        >>> chunk = pd.DataFrame({"cat": ["a", "a", "b"], "total": [1, 2, 3]})
        >>> p = partial_aggregate(chunk, "cat", {"t": ("total", "sum")})
        >>> p.sort_values("cat")["total__sum"].tolist()
        [3, 3]
    """
    keys = _keys(by)
    states = _states(normalize_aggs(aggs))
    partial = _partial_table(_input_table(df, keys, states), keys, states)
    return _to_pandas(partial, _partial_dtypes(df.dtypes, partial.schema, keys, states))


def combine_partials(partials: Iterable[pd.DataFrame], by: str | Sequence[str], aggs: Aggs) -> pd.DataFrame:
    """Merge partial frames (from :func:`partial_aggregate` or earlier combines) into one.

    The operation is associative and commutative, so partials can be combined
    in any grouping and order (incrementally, in a tree, on other workers).

    Args:
        partials: partial frames with the same columns.
        by: key column name(s).
        aggs: ``{name: (column, func)}`` as for :func:`rollup`.

    Returns:
        One partial frame with one row per group.

    Example:
        >>> a = partial_aggregate(pd.DataFrame({"k": ["x"], "v": [1]}), "k", {"s": ("v", "sum")})
        >>> b = partial_aggregate(pd.DataFrame({"k": ["x"], "v": [2]}), "k", {"s": ("v", "sum")})
        >>> combine_partials([a, b], "k", {"s": ("v", "sum")})["v__sum"].tolist()
        [3]
    """
    keys = _keys(by)
    states = _states(normalize_aggs(aggs))
    partials = list(partials)
    if not partials:
        raise ConfigurationError("combine_partials needs at least one partial frame")
    non_empty = [p for p in partials if len(p)]
    if not non_empty:
        return partials[0]
    if len(non_empty) == 1:
        return non_empty[0]
    names = [*keys, *(_state_column(column, state) for column, state in states)]
    tables = [pa.Table.from_pandas(p[names], preserve_index=False, nthreads=1) for p in non_empty]
    return _to_pandas(_combine_tables(tables, keys, states), _combined_dtypes([p.dtypes for p in non_empty], keys))


def finalize(partial: pd.DataFrame, by: str | Sequence[str], aggs: Aggs) -> pd.DataFrame:
    """Turn a combined partial frame into the final result of :func:`rollup`.

    Args:
        partial: the output of :func:`combine_partials` (or :func:`partial_aggregate`).
        by: key column name(s).
        aggs: ``{name: (column, func)}`` as for :func:`rollup`.

    Returns:
        One row per group: the ``by`` columns, then one column per named
        aggregation in the given order, sorted by ``by``, with a ``RangeIndex``.

    Example:
        >>> p = partial_aggregate(pd.DataFrame({"k": ["x", "x"], "v": [1, 2]}), "k",
        ...                       {"m": ("v", "mean")})
        >>> finalize(p, "k", {"m": ("v", "mean")})["m"].tolist()
        [1.5]
    """
    keys = _keys(by)
    aggs = normalize_aggs(aggs)
    columns: dict[str, pd.Series] = {k: partial[k] for k in keys}
    for name, (column, func) in aggs.items():
        if func == "size":
            columns[name] = partial[_SIZE_COLUMN]
        elif func == "mean":
            columns[name] = _mean(partial[f"{column}__sum"], partial[f"{column}__count"])
        else:
            columns[name] = partial[f"{column}__{func}"]
    result = pd.DataFrame({name: values.reset_index(drop=True) for name, values in columns.items()})
    if len(result):
        # pandas cannot sort Arrow dictionary columns: sort by their values.
        sortable = pd.DataFrame({k: _decoded(result[k]) for k in keys})
        result = result.take(sortable.sort_values(keys, kind="stable").index).reset_index(drop=True)
    return result


def rollup(
    chunks: pd.DataFrame | Iterable[pd.DataFrame],
    by: str | Sequence[str],
    **named_aggs: tuple[str, str],
) -> pd.DataFrame:
    """Group and aggregate a DataFrame or a stream of DataFrame chunks, pandas-style.

    Chunks are reduced one at a time into partial aggregates that are merged
    incrementally, so memory is bounded by the number of groups, not by the
    number of rows or chunks. See the module docstring for the exact
    semantics (null keys dropped, decimal sums widened to ``decimal128(38, s)``,
    decimal means rounded half-even to the column's scale).

    Args:
        chunks: a DataFrame or any iterable of DataFrames (e.g. ``read_csv_chunks``).
        by: key column name(s).
        **named_aggs: ``output_name=(column, func)`` with ``func`` one of
            ``size``, ``count``, ``sum``, ``mean``, ``min``, ``max``.

    Returns:
        One row per group: ``by`` columns then the named aggregations, sorted
        by ``by``. Empty input gives an empty frame with those columns.

    Example:
        >>> sales = pd.DataFrame({"categoria": ["b", "a", "b"], "id": [1, 2, 3],
        ...                       "total": [10.0, 5.0, 20.0]})
        >>> rollup([sales.iloc[:2], sales.iloc[2:]], by="categoria",
        ...        total_vendas=("id", "size"), valor_medio=("total", "mean"))
          categoria  total_vendas  valor_medio
        0         a             1          5.0
        1         b             2         15.0
    """
    keys = _keys(by)
    aggs = normalize_aggs(named_aggs)
    states = _states(aggs)
    if isinstance(chunks, pd.DataFrame):
        chunks = (chunks,)
    # Partials stay Arrow tables until the end: one conversion to pandas, not one per chunk.
    pending: list[pa.Table] = []
    dtypes: list[Mapping[str, Any]] = []  # of the non-empty partials
    empty_dtypes: Mapping[str, Any] | None = None  # of the first partial, for an all-empty input
    for chunk in chunks:
        partial = _partial_table(_input_table(chunk, keys, states), keys, states)
        chunk_dtypes = _partial_dtypes(chunk.dtypes, partial.schema, keys, states)
        if len(partial):
            dtypes.append(chunk_dtypes)
        empty_dtypes = empty_dtypes or chunk_dtypes
        pending.append(partial)
        if len(pending) >= _COMBINE_EVERY:
            pending = [_combine_tables(pending, keys, states)]
            dtypes = [_combined_dtypes(dtypes, keys)] if dtypes else []
    if not pending:
        return _empty_result(keys, aggs)
    combined = _combine_tables(pending, keys, states)
    return finalize(_to_pandas(combined, _combined_dtypes(dtypes, keys) if dtypes else empty_dtypes), keys, aggs)


# --- helpers -----------------------------------------------------------------

_ARROW_FUNC = {"size": "count_all", "count": "count", "sum": "sum", "min": "min", "max": "max"}


def _combine_func(state_column: str) -> str:
    state = "size" if state_column == _SIZE_COLUMN else state_column.rsplit("__", 1)[1]
    return _COMBINE_WITH[state]


def _keys(by: str | Sequence[str]) -> list[str]:
    keys = [by] if isinstance(by, str) else list(by)
    if not keys:
        raise ConfigurationError("rollup needs at least one 'by' column")
    return keys


def _states(aggs: Aggs) -> list[tuple[str | None, str]]:
    """Distinct ``(column, state)`` pairs the aggregations need, in first-use order."""
    states: dict[tuple[str | None, str], None] = {}
    for column, func in aggs.values():
        for state in _STATES_FOR[func]:
            states[(None, "size") if state == "size" else (column, state)] = None
    return list(states)


def _state_column(column: str | None, state: str) -> str:
    return _SIZE_COLUMN if state == "size" else f"{column}__{state}"


def _group(table: pa.Table, keys: list[str], aggs: list[tuple[str | None, str]], names: list[str]) -> pa.Table:
    """Arrow's hash aggregation of ``(column, function)`` pairs (column None: ``count_all``) per
    ``keys``; the result has the keys, then one column per pair, named ``names``."""
    specs = [_arrow_spec(column, func) for column, func in aggs]
    grouped = table.group_by(keys).aggregate(specs)
    arrow_names = ["count_all" if column is None else f"{column}_{func}" for column, func in aggs]
    return grouped.select([*arrow_names, *keys]).rename_columns([*names, *keys]).select([*keys, *names])


def _arrow_spec(column: str | None, func: str) -> tuple:
    if column is None:
        return ([], "count_all")
    if func == "sum":  # the sum of a group without values is 0, not null
        return (column, func, pc.ScalarAggregateOptions(min_count=0))
    return (column, func)


def _replace(table: pa.Table, name: str, column: pa.ChunkedArray) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, column)


def _without_dictionary(table: pa.Table, name: str) -> pa.Table:
    """``table`` with column ``name`` decoded when it is dictionary-encoded (Arrow's hash
    aggregation cannot min/max dictionaries)."""
    field_type = table.schema.field(name).type
    if pa.types.is_dictionary(field_type):
        return _replace(table, name, table[name].cast(field_type.value_type))
    return table


def _drop_null_keys(table: pa.Table, keys: list[str]) -> pa.Table:
    mask = None
    for key in keys:
        if table[key].null_count:
            valid = pc.is_valid(table[key])
            mask = valid if mask is None else pc.and_(mask, valid)
    return table if mask is None else table.filter(mask)


def _input_table(df: pd.DataFrame, keys: list[str], states: list[tuple[str | None, str]]) -> pa.Table:
    """The key and value columns of a chunk as an Arrow table (pyarrow-backed columns: no copy)."""
    needed = [*keys, *(col for col, _ in states if col is not None)]
    missing = [c for c in dict.fromkeys(needed) if c not in df.columns]
    if missing:
        raise ConfigurationError(f"rollup: column(s) {missing} not in the data; available: {list(df.columns)}")
    value_columns = list(dict.fromkeys(col for col, _ in states if col is not None and col not in keys))
    table = pa.Table.from_pandas(df[[*keys, *value_columns]], preserve_index=False, nthreads=1)
    return _drop_null_keys(table.unify_dictionaries(), keys)


def _partial_table(table: pa.Table, keys: list[str], states: list[tuple[str | None, str]]) -> pa.Table:
    """One chunk's partial states per group (Arrow's hash aggregation): keys, then one column per state."""
    # Arrow's hash aggregation cannot min/max dictionaries or sum booleans;
    # feed it plain values (pandas sums booleans as integers too).
    arrow_aggs: list[tuple[str | None, str]] = []
    for column, state in states:
        if state == "size":
            arrow_aggs.append((None, "count_all"))
            continue
        table = _without_dictionary(table, column)
        field_type = table.schema.field(column).type
        if state == "sum" and pa.types.is_boolean(field_type):
            table = _replace(table, column, table[column].cast(pa.int64()))
        arrow_aggs.append((column, _ARROW_FUNC[state]))
    return _group(table, keys, arrow_aggs, [_state_column(column, state) for column, state in states])


def _combine_tables(tables: list[pa.Table], keys: list[str], states: list[tuple[str | None, str]]) -> pa.Table:
    """Merge partial tables into one row per group (associative, commutative)."""
    non_empty = [t for t in tables if t.num_rows]
    if len(non_empty) <= 1:
        return non_empty[0] if non_empty else tables[0]
    # Categorical keys of different chunks have different dictionaries: Arrow groups one.
    table = pa.concat_tables(non_empty, promote_options="permissive").unify_dictionaries()
    names = [_state_column(column, state) for column, state in states]
    for name in names:
        table = _without_dictionary(table, name)
    return _group(table, keys, [(name, _combine_func(name)) for name in names], names)


def _partial_dtypes(
    input_dtypes: Mapping[str, Any], schema: pa.Schema, keys: list[str], states: list[tuple[str | None, str]]
) -> dict[str, Any]:
    """pandas dtypes of a partial: keys and min/max keep the input's, sums its backend, counts int64."""
    dtypes: dict[str, Any] = {k: input_dtypes[k] for k in keys}
    for column, state in states:
        name = _state_column(column, state)
        if state in ("size", "count"):
            dtypes[name] = np.dtype("int64")
        elif state in ("min", "max"):
            dtypes[name] = input_dtypes[column]
        else:
            dtypes[name] = _sum_dtype(input_dtypes[column], schema.field(name).type)
    return dtypes


def _decoded(series: pd.Series) -> pd.Series:
    dtype = series.dtype
    if isinstance(dtype, pd.ArrowDtype) and pa.types.is_dictionary(dtype.pyarrow_dtype):
        return series.astype(pd.ArrowDtype(dtype.pyarrow_dtype.value_type))
    return series


def _combined_dtypes(partials: list[Mapping[str, Any]], keys: list[str]) -> dict[str, Any]:
    """The dtypes of combined partials (given their dtypes): the first one's, categorical keys widened.

    Chunks may carry different categories; the union (sorted, as ``pd.concat``
    then ``groupby`` would order the values) keeps every group.
    """
    dtypes = dict(partials[0])
    for key in keys:
        kinds = [p[key] for p in partials]
        if isinstance(dtypes[key], pd.CategoricalDtype) and any(kind != dtypes[key] for kind in kinds):
            empty = [pd.Categorical([], dtype=kind) for kind in kinds if isinstance(kind, pd.CategoricalDtype)]
            dtypes[key] = pd.api.types.union_categoricals(empty, sort_categories=True).dtype
    return dtypes


def _is_decimal_type(arrow_type: pa.DataType) -> bool:
    return pa.types.is_decimal(arrow_type)


def _sum_dtype(input_dtype: Any, sum_type: pa.DataType) -> Any:
    if isinstance(input_dtype, pd.ArrowDtype) or _is_decimal_type(sum_type):
        return pd.ArrowDtype(sum_type)
    return np.dtype("float64") if pa.types.is_floating(sum_type) else np.dtype("int64")


def _to_pandas(table: pa.Table, dtypes: Mapping[str, Any]) -> pd.DataFrame:
    """Convert an Arrow table to pandas, giving each column the requested dtype."""
    data = {}
    for name in table.column_names:
        column = table[name]
        dtype = dtypes[name]
        if isinstance(dtype, pd.ArrowDtype):
            if column.type != dtype.pyarrow_dtype:
                column = column.cast(dtype.pyarrow_dtype)
            data[name] = pd.Series(pd.arrays.ArrowExtensionArray(column), name=name, copy=False)
        else:
            series = column.to_pandas()
            if isinstance(dtype, pd.CategoricalDtype) and isinstance(series.dtype, pd.CategoricalDtype):
                # Unordered categoricals compare equal whatever their order: set it.
                data[name] = series.cat.set_categories(dtype.categories, ordered=dtype.ordered)
            else:
                data[name] = series if series.dtype == dtype else series.astype(dtype)
    return pd.DataFrame(data)


def _mean(sums: pd.Series, counts: pd.Series) -> pd.Series:
    dtype = sums.dtype
    if isinstance(dtype, pd.ArrowDtype) and pa.types.is_decimal(dtype.pyarrow_dtype):
        return _decimal_mean(sums, counts)
    counts_float = counts.to_numpy(dtype="float64")
    counts_float[counts_float == 0] = np.nan
    if isinstance(dtype, pd.ArrowDtype):
        values = sums.astype(pd.ArrowDtype(pa.float64())) / counts_float
        return values.astype(pd.ArrowDtype(pa.float64()))
    return pd.Series(sums.to_numpy(dtype="float64") / counts_float)


def _decimal_mean(sums: pd.Series, counts: pd.Series) -> pd.Series:
    """Exact decimal sum / count rounded half-even to the sum's scale."""
    sum_type = sums.dtype.pyarrow_dtype
    out_type = pa.decimal128(38, sum_type.scale)
    array = pa.chunked_array(sums.array._pa_array).combine_chunks().cast(out_type)
    n = np.asarray(counts, dtype="int64")
    unscaled_lo, unscaled_hi = _decimal128_words(array)
    valid = (n > 0) & ~np.asarray(array.is_null(), dtype=bool)
    if np.all(unscaled_hi == (unscaled_lo >> 63)):
        # Every sum fits in int64 (the usual case): vectorized floor division,
        # then round half to even on the remainder.
        divisor = np.where(valid, n, 1)
        quotient, remainder = np.divmod(unscaled_lo, divisor)
        twice = 2 * remainder
        round_up = (twice > divisor) | ((twice == divisor) & (quotient % 2 == 1))
        quotient = quotient + round_up
        return pd.Series(pd.arrays.ArrowExtensionArray(decimal_array(quotient, 38, out_type.scale, null_mask=~valid)))
    # Sums beyond int64: exact per-group integer arithmetic (rare, few groups).
    values = []
    for total, count, ok in zip(array.to_pylist(), n.tolist(), valid.tolist(), strict=True):
        if not ok:
            values.append(None)
            continue
        unscaled = int(total.scaleb(sum_type.scale))
        quotient, remainder = divmod(unscaled, count)
        if 2 * remainder > count or (2 * remainder == count and quotient % 2):
            quotient += 1
        values.append(Decimal(quotient).scaleb(-sum_type.scale))
    return pd.Series(pd.arrays.ArrowExtensionArray(pa.array(values, type=out_type)))


def _decimal128_words(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Low and high int64 words of each decimal128 value's unscaled integer."""
    words = np.frombuffer(array.buffers()[1], dtype="<i8").reshape(-1, 2)
    words = words[array.offset : array.offset + len(array)]
    return words[:, 0], words[:, 1]


def _empty_result(keys: list[str], aggs: Aggs) -> pd.DataFrame:
    columns: dict[str, pd.Series] = {k: pd.Series([], dtype=object) for k in keys}
    for name, (_, func) in aggs.items():
        columns[name] = pd.Series([], dtype="int64" if func in ("size", "count") else object)
    return pd.DataFrame(columns)
