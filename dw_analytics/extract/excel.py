"""Read one sheet of an Excel workbook into pandas, streaming rows read-only.

The first row is the header. Excel cells carry no declared column type, so
each column is typed from its values (empty cells are missing values):

=======================================  ========================================
column values                            pandas dtype
=======================================  ========================================
whole numbers only                       ``Int64``
numbers                                  ``float64``; exact ``decimal128`` for
                                         columns named in ``decimals``
booleans                                 ``boolean``
date-times (with or without dates)       ``datetime64[us, settings.TIME_ZONE]``:
                                         Excel wall-clock times, localized
dates only                               ``ArrowDtype(date32)``
text                                     ``str``
a mix (e.g. numbers and text)            ``object``, values as in the sheet
=======================================  ========================================

The default engine is python-calamine (Rust): on a 100,000-row, 4-column sheet
it took 0.6 s against 5.5 s for openpyxl ``read_only=True`` (and 9 s for
``pd.read_excel``), measured here. It holds the sheet's cells while reading
(an Excel sheet is at most 1,048,576 rows); ``engine="openpyxl"`` streams rows
read-only instead. Date-only cells come back as dates from calamine and as
midnight date-times from openpyxl.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from dw_analytics.extract import _types as t
from dw_analytics.extract.exceptions import (
    EmptySourceError,
    ExtractError,
    SourceNotFoundError,
    UnsupportedSourceError,
)

__all__ = ["read_excel"]

ENGINES = ("calamine", "openpyxl")


def read_excel(
    path: str | Path,
    sheet: str | int | None = None,
    *,
    decimals: Mapping[str, int | tuple[int, int]] | None = None,
    engine: str = "calamine",
) -> pd.DataFrame:
    """Read a sheet of an ``.xlsx`` workbook into a DataFrame.

    Args:
        path: the workbook file.
        sheet: a sheet name, or a 0-based index; ``None`` reads the first sheet.
        decimals: columns to read as exact decimals, mapped to a scale or to
            ``(precision, scale)`` (default precision 18). Excel stores numbers as
            doubles; rounding at the scale is exact for values of up to 15
            significant digits, which is all a double holds.
        engine: ``"calamine"`` (default, fastest) or ``"openpyxl"`` (read-only
            streaming).

    Returns:
        The sheet as a DataFrame, columns named by the header row.

    Raises:
        SourceNotFoundError: the file, or the sheet, does not exist (the message
            lists the workbook's sheets).
        EmptySourceError: the sheet has no header row.
        UnsupportedSourceError: the file is not a workbook the engine can read.

    Example:
        >>> df = read_excel("data/precos.xlsx", "Produtos", decimals={"preco": 2})
        >>> df.dtypes["preco"]
        decimal128(18, 2)[pyarrow]
    """
    if engine not in ENGINES:
        raise ExtractError(f"Unknown Excel engine {engine!r}; choose one of {list(ENGINES)}.")
    path = Path(path)
    if not path.is_file():
        raise SourceNotFoundError(f"Excel file not found: {path}", file=str(path))
    open_rows = _calamine_rows if engine == "calamine" else _openpyxl_rows
    rows = open_rows(path, sheet)
    header = next(rows, None)
    if header is None:
        raise EmptySourceError(f"Sheet {sheet!r} of {path} is empty: no header row.", file=str(path))
    names = _column_names(header)
    body = [tuple(row[: len(names)]) + (None,) * (len(names) - len(row)) for row in rows]
    while body and all(_is_blank(v) for v in body[-1]):
        body.pop()  # trailing blank rows (formatted but empty cells)
    matrix = t.to_object_matrix(body) if body else np.empty((0, len(names)), dtype=object)
    scales = _decimal_specs(decimals or {}, names, path)
    columns = {name: _typed_column(name, matrix[:, i], scales.get(name)) for i, name in enumerate(names)}
    return pd.DataFrame(columns)


# -- engines -----------------------------------------------------------------------------------


def _resolve_sheet(sheet: str | int | None, sheet_names: list[str], path: Path) -> int:
    if sheet is None:
        if not sheet_names:
            raise EmptySourceError(f"{path} has no sheets.", file=str(path))
        return 0
    if isinstance(sheet, int) and not isinstance(sheet, bool):
        if -len(sheet_names) <= sheet < len(sheet_names):
            return sheet % len(sheet_names)
    elif sheet in sheet_names:
        return sheet_names.index(sheet)
    raise SourceNotFoundError(
        f"Sheet {sheet!r} not found in {path}; its sheets are {sheet_names}.",
        file=str(path),
        sheet=sheet,
        sheets=sheet_names,
    )


def _calamine_rows(path: Path, sheet: str | int | None) -> Iterator[list[Any]]:
    from python_calamine import CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # noqa: BLE001 - calamine raises its own error types
        raise UnsupportedSourceError(f"Cannot read {path} as an Excel workbook: {exc}", file=str(path)) from exc
    index = _resolve_sheet(sheet, list(workbook.sheet_names), path)
    worksheet = workbook.get_sheet_by_index(index)
    return iter(worksheet.iter_rows())


def _openpyxl_rows(path: Path, sheet: str | int | None) -> Iterator[tuple[Any, ...]]:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - zipfile / xml errors of a non-workbook
        raise UnsupportedSourceError(f"Cannot read {path} as an Excel workbook: {exc}", file=str(path)) from exc
    index = _resolve_sheet(sheet, workbook.sheetnames, path)

    def rows() -> Iterator[tuple[Any, ...]]:
        try:
            yield from workbook.worksheets[index].iter_rows(values_only=True)
        finally:
            workbook.close()

    return rows()


# -- typing ------------------------------------------------------------------------------------


def _is_blank(value: Any) -> bool:
    return value is None or value == ""


def _column_names(header: Any) -> list[str]:
    names = ["" if _is_blank(v) else str(v).strip() for v in header]
    while names and not names[-1]:
        names.pop()  # formatted but empty cells right of the table
    seen: dict[str, int] = {}
    result = []
    for i, name in enumerate(names):
        name = name or f"column_{i + 1}"
        if name in seen:  # duplicate header: keep both, the second gets a suffix
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        seen.setdefault(name, 0)
        result.append(name)
    return result


def _decimal_specs(
    decimals: Mapping[str, int | tuple[int, int]], names: list[str], path: Path
) -> dict[str, tuple[int, int]]:
    unknown = sorted(set(decimals) - set(names))
    if unknown:
        raise ExtractError(
            f"decimals names columns {unknown} that {path} does not have; its columns are {names}.",
            file=str(path),
        )
    return {name: (spec if isinstance(spec, tuple) else (18, spec)) for name, spec in decimals.items()}


def _typed_column(name: str, values: np.ndarray, decimal: tuple[int, int] | None) -> pd.Series:
    values = values.copy()
    values[values == ""] = None  # calamine gives "" for an empty cell
    kind = pd.api.types.infer_dtype(values, skipna=True)
    tz = _time_zone()
    if decimal is not None:
        if kind not in ("integer", "floating", "mixed-integer-float", "empty", "decimal"):
            raise ExtractError(f"Column {name!r} is read as decimals but holds {kind} values.", column=name)
        precision, scale = decimal
        spec = t.ColumnSpec(name, t.DECIMAL, precision=precision, scale=scale, tz=tz)
        return spec.convert(values)
    if kind == "empty":
        return pd.Series(pd.array([None] * len(values), dtype=t.STRING_DTYPE), name=name)
    if kind == "boolean":
        return t.ColumnSpec(name, t.BOOL, tz=tz).convert(values)
    if kind in ("integer", "floating", "mixed-integer-float"):
        floats = pd.array(values.tolist(), dtype="Float64")
        whole = floats.dropna()
        if len(whole) and (whole == whole.round()).all() and (abs(whole) < 2**53).all():
            return pd.Series(floats.astype("Int64"), name=name)
        return pd.Series(floats.to_numpy(dtype=np.float64, na_value=np.nan), name=name)
    if kind in ("datetime", "datetime64"):
        spec = t.ColumnSpec(name, t.DATETIME, tz=tz, naive_tz=tz)
        return spec.convert(values)
    if kind == "date":
        if any(isinstance(v, dt.datetime) for v in values):  # dates and date-times mixed
            as_datetimes = [
                v if v is None or isinstance(v, dt.datetime) else dt.datetime.combine(v, dt.time()) for v in values
            ]
            return t.ColumnSpec(name, t.DATETIME, tz=tz, naive_tz=tz).convert(as_datetimes)
        return t.ColumnSpec(name, t.DATE, tz=tz).convert(values)
    if kind == "time":
        return pd.Series(pd.array(pa.array(values, pa.time64("us")), dtype=t.TIME_DTYPE), name=name)
    if kind == "string":
        return pd.Series(pd.array(values, dtype=t.STRING_DTYPE), name=name)
    return pd.Series(values, name=name, dtype=object)  # mixed: as in the sheet, no coercion


def _time_zone() -> str:
    try:
        from django.conf import settings

        return settings.TIME_ZONE or "UTC"
    except Exception:  # noqa: BLE001 - Django not configured
        return "UTC"
