"""DataFrames → an Excel workbook an analyst is glad to open.

:func:`write_excel` writes one sheet per DataFrame (or per stream of chunks):

* every sheet is a formatted Excel table (``add_table``: banded rows, filter
  buttons, styled header) with the header row frozen and column widths
  computed from a sample of the data;
* number formats by column kind:

  ==========================  ==============================================
  column                      Excel format
  ==========================  ==============================================
  decimal (money)             ``"R$ "#,##0.00`` (:data:`MONEY_FORMAT`)
  percentage                  ``0.00%`` — the columns in ``percent_cols``; by
                              default numeric columns whose name contains
                              ``margem``, ``margin``, ``pct``, ``percent`` or
                              ``percentual`` as a word part
  date                        ``dd/mm/yyyy``
  datetime                    ``dd/mm/yyyy hh:mm`` (tz-aware values converted
                              to ``timezone``, default America/Sao_Paulo)
  other numbers, booleans     General
  everything else             text
  ==========================  ==============================================

  ``number_formats={"col": "0.000"}`` overrides any of these.
* Excel stores every number as a double: decimals are written as numbers
  (sums and pivots work), exact to the cent for values below 1e13; exactness
  beyond that ends at the Excel file (the Parquet output keeps it).
* A text cell starting with ``=``, ``+``, ``-``, ``@``, tab, CR or LF is
  written as a string cell with Excel's quote prefix (the ``'`` an analyst
  would type), so it is never a formula, not even after the cell is edited
  (OWASP CSV/formula injection). The text itself is unchanged.
* A sheet longer than 1,048,575 data rows continues on numbered sheets:
  ``Vendas (1)``, ``Vendas (2)``... For a DataFrame the first sheet is numbered
  too; for a stream of chunks the total is unknown when the first sheet is
  created, so the parts are ``Vendas``, ``Vendas (2)``, ``Vendas (3)``...
* Sheet names are sanitized: ``[]:*?/\\`` become ``_``, at most 31
  characters, no leading/trailing apostrophe, ``History`` avoided, unique
  ignoring case.
* Streaming: above :data:`STREAMING_THRESHOLD_ROWS` rows in one sheet (or when
  any sheet is a stream of chunks) the workbook is written with XlsxWriter's
  ``constant_memory`` mode, whose memory stays flat. ``add_table`` is
  unavailable there, so those sheets get the same header style, frozen
  header, widths and number formats plus an autofilter instead of a table.
  ``streaming=True/False`` forces the choice.
* Publication is atomic (:func:`dw_analytics.load.paths.atomic_output`).
"""

from __future__ import annotations

import os
import re
import time
import unicodedata
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from dw_analytics.load.base import LoadResult
from dw_analytics.load.exceptions import LoadError, LoadValidationError
from dw_analytics.load.paths import atomic_output, resolve_output_path

__all__ = ["ExcelWriteResult", "sanitize_sheet_name", "write_excel"]

DEFAULT_TIMEZONE = "America/Sao_Paulo"  # the same business zone as the Parquet output
EXCEL_MAX_ROWS = 1_048_576  # rows per sheet, header included
EXCEL_MAX_CELL_CHARS = 32_767
SHEET_NAME_MAX = 31
# Normal mode keeps every cell in memory (~330 bytes each, measured: +116 MB for
# 50,000 rows x 7 columns); above this many rows in a sheet, stream instead.
STREAMING_THRESHOLD_ROWS = 100_000
WIDTH_SAMPLE_ROWS = 1_000
CONVERT_ROWS = 50_000  # rows converted to Python values at once
MAX_COLUMN_WIDTH = 60
MIN_COLUMN_WIDTH = 6
DEFAULT_TABLE_STYLE = "Table Style Medium 2"

MONEY_FORMAT = '"R$ "#,##0.00'
PERCENT_FORMAT = "0.00%"
DATE_FORMAT = "dd/mm/yyyy"
DATETIME_FORMAT = "dd/mm/yyyy hh:mm"

PERCENT_NAME = re.compile(r"(?i)(^|[^a-z])(margem|margin|pct|percent|percentual)")
FORMULA_TRIGGER = r"^[=+\-@\t\r\n]"
_SHEET_INVALID = re.compile(r"[\[\]:*?/\\\x00-\x1f]")
# Days from Excel's day zero (1899-12-30, which absorbs its 1900 leap-year bug) to 1970-01-01.
_EXCEL_EPOCH_OFFSET_DAYS = 25_569
_US_PER_DAY = 86_400_000_000

_NUMERIC_KINDS = ("money", "float", "integer")


@dataclass
class ExcelWriteResult(LoadResult):
    """What :func:`write_excel` wrote.

    ``target`` is the workbook path, ``n_inserted`` the data rows over all
    sheets, ``duration_s`` the wall time.

    Attributes:
        sheets: written sheet name → data rows (split parts listed separately).
        streaming: True when the workbook was written in constant-memory mode.
        n_escaped: text cells given a quote prefix against formula injection.
        bytes_written: size of the workbook.

    Example:
        >>> ExcelWriteResult(target="/out/r.xlsx", sheets={"Vendas": 3}).sheets
        {'Vendas': 3}
    """

    sheets: dict[str, int] = field(default_factory=dict)
    streaming: bool = False
    n_escaped: int = 0
    bytes_written: int = 0


@dataclass
class _Column:
    source: Any  # the DataFrame column label
    header: str
    kind: str  # money, percent, float, integer, date, datetime, bool, text
    fmt: Format | None
    width: float


@dataclass
class _Converted:
    values: list[Any]  # native Python values, None = leave the cell empty
    write: str  # worksheet method name
    fmt: Format | None = None
    row_formats: list[Any] | None = None  # per-row formats when some cells differ


def write_excel(
    sheets: Mapping[str, pd.DataFrame | Iterable[pd.DataFrame]],
    path: str | os.PathLike[str],
    *,
    percent_cols: Collection[str] | None = None,
    number_formats: Mapping[str, str] | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    streaming: bool | None = None,
    streaming_threshold: int = STREAMING_THRESHOLD_ROWS,
    table_style: str = DEFAULT_TABLE_STYLE,
    on_workbook: Callable[[xlsxwriter.Workbook, Mapping[str, list[str]]], None] | None = None,
) -> ExcelWriteResult:
    """Write DataFrames as formatted Excel tables, one sheet each, atomically.

    Args:
        sheets: sheet name → DataFrame, or → iterable of DataFrame chunks
            (written in order; chunks must have the first chunk's columns).
        path: workbook name under ``DW_OUTPUT_DIR`` (``.xlsx``).
        percent_cols: columns shown as ``0.00%`` (values are fractions:
            0.25 shows 25.00%). None applies the name heuristic of the module
            docstring to numeric columns; an empty collection disables it.
        number_formats: column → Excel number format, overriding the defaults.
        timezone: zone tz-aware datetimes are converted to (Excel has no zones).
        streaming: force constant-memory mode on (True) or off (False); None
            chooses it when a sheet has more than ``streaming_threshold`` rows
            or is a stream of chunks.
        streaming_threshold: see ``streaming``.
        table_style: an Excel table style name.
        on_workbook: called once after the data sheets are written and before
            the workbook is closed, with the XlsxWriter workbook and, per name
            of ``sheets``, the sheet names actually written (several when a
            sheet was split). It may add sheets, charts or formats (see
            :func:`dw_analytics.reports.sales_report`); an exception it raises
            aborts the write and nothing is published.

    Returns:
        :class:`ExcelWriteResult` (a :class:`LoadResult`).

    Raises:
        OutputPathError: ``path`` escapes the output root.
        LoadValidationError: bad options, a text longer than Excel's 32,767
            characters per cell, or chunks whose columns differ.
        LoadError: the write failed; nothing was published.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"categoria": ["A"], "margem": [0.25]})
        >>> write_excel({"Vendas": df}, "reports/vendas.xlsx").sheets  # doctest: +SKIP
        {'Vendas': 1}
    """
    started = time.perf_counter()
    target = resolve_output_path(path)
    if not isinstance(sheets, Mapping) or not sheets:
        raise LoadValidationError("write_excel needs a non-empty mapping of sheet name → DataFrame", target=str(target))
    if target.suffix.lower() not in (".xlsx", ".xlsm"):
        raise LoadValidationError(f"An Excel workbook must end in .xlsx, got {target.name!r}", target=str(target))
    if streaming_threshold < 1:
        raise LoadValidationError("streaming_threshold must be positive", target=str(target))
    if streaming is None:
        streaming = any(
            not isinstance(data, pd.DataFrame) or len(data) > streaming_threshold for data in sheets.values()
        )
    options = {
        "constant_memory": streaming,
        # Never turn data into formulas, links or numbers behind our back.
        "strings_to_formulas": False,
        "strings_to_urls": False,
        "strings_to_numbers": False,
        "remove_timezone": True,
    }
    written: dict[str, int] = {}
    n_escaped = 0
    try:
        with atomic_output(target) as tmp:
            workbook = xlsxwriter.Workbook(str(tmp), options)
            writer = _WorkbookWriter(
                workbook,
                target=str(target),
                streaming=streaming,
                percent_cols=percent_cols,
                number_formats=dict(number_formats or {}),
                timezone=timezone,
                table_style=table_style,
            )
            written_names: dict[str, list[str]] = {}
            for name, data in sheets.items():
                first = len(workbook.worksheets())
                writer.write_sheet(str(name), data)
                written_names[str(name)] = [ws.name for ws in workbook.worksheets()[first:]]
            if on_workbook is not None:
                on_workbook(workbook, written_names)
            workbook.close()
            written, n_escaped = writer.sheets, writer.n_escaped
    except LoadError:
        raise
    except (OSError, xlsxwriter.exceptions.XlsxWriterException, pa.ArrowException) as exc:
        raise LoadError(f"Writing Excel {target} failed, nothing was published: {exc}", target=str(target)) from exc
    return ExcelWriteResult(
        target=str(target),
        n_inserted=sum(written.values()),
        duration_s=time.perf_counter() - started,
        details={"streaming": streaming},
        sheets=written,
        streaming=streaming,
        n_escaped=n_escaped,
        bytes_written=target.stat().st_size,
    )


def sanitize_sheet_name(name: str, existing: Collection[str] = (), *, suffix: str = "") -> str:
    """A valid, unique Excel sheet name derived from ``name``.

    ``[]:*?/\\`` and control characters become ``_``; the result (with
    ``suffix``) fits in 31 characters, does not start or end with an
    apostrophe, is not ``History`` and differs, ignoring case, from every name
    in ``existing`` (a `` (2)``, `` (3)``... is added when needed).

    Example:
        >>> sanitize_sheet_name("Vendas: 2026/01 [final]")
        'Vendas_ 2026_01 _final_'
        >>> sanitize_sheet_name("Vendas", ["vendas"])
        'Vendas (2)'
    """
    base = _SHEET_INVALID.sub("_", str(name)).strip().strip("'") or "Sheet"
    if base.lower() == "history":  # reserved by Excel
        base = "History_"
    taken = {n.lower() for n in existing}

    def fit(extra: str) -> str:
        return base[: SHEET_NAME_MAX - len(extra)].rstrip().rstrip("'") + extra

    candidate, n = fit(suffix), 1
    while candidate.lower() in taken:
        n += 1
        candidate = fit(f"{suffix} ({n})")
    return candidate


class _WorkbookWriter:
    def __init__(
        self,
        workbook: xlsxwriter.Workbook,
        *,
        target: str,
        streaming: bool,
        percent_cols: Collection[str] | None,
        number_formats: dict[str, str],
        timezone: str,
        table_style: str,
    ) -> None:
        self.workbook = workbook
        self.target = target
        self.streaming = streaming
        self.percent_cols = None if percent_cols is None else {str(c) for c in percent_cols}
        self.number_formats = number_formats
        self.timezone = timezone
        self.table_style = table_style
        self.sheets: dict[str, int] = {}
        self.n_escaped = 0
        self._table_names: set[str] = set()
        self._formats: dict[tuple[str, bool], Format] = {}
        self.header_format = workbook.add_format(
            {
                "bold": True,
                "font_color": "#FFFFFF",
                "bg_color": "#1F4E78",
                "border": 1,
                "valign": "top",
                "text_wrap": True,
            }
        )

    def number_format(self, num_format: str | None, *, quote_prefix: bool = False) -> Format | None:
        if num_format is None and not quote_prefix:
            return None
        key = (num_format or "", quote_prefix)
        if key not in self._formats:
            props: dict[str, Any] = {}
            if num_format:
                props["num_format"] = num_format
            if quote_prefix:
                props["quote_prefix"] = True
            self._formats[key] = self.workbook.add_format(props)
        return self._formats[key]

    # ----------------------------------------------------------------- sheets

    def write_sheet(self, name: str, data: pd.DataFrame | Iterable[pd.DataFrame]) -> None:
        capacity = EXCEL_MAX_ROWS - 1  # read at call time: tests patch it
        if isinstance(data, pd.DataFrame):
            chunks: Iterator[pd.DataFrame] = iter([data])
            numbered = len(data) > capacity
        elif isinstance(data, str | bytes | Mapping) or not isinstance(data, Iterable):
            raise LoadValidationError(
                f"Sheet {name!r}: expected a DataFrame or an iterable of DataFrames, got {type(data).__name__}",
                target=self.target,
                sheet=name,
            )
        else:
            chunks = iter(data)
            numbered = False
        columns: list[_Column] | None = None
        sheet: Worksheet | None = None
        part = rows_in_sheet = 0
        for chunk_index, chunk in enumerate(chunks):
            if not isinstance(chunk, pd.DataFrame):
                raise LoadValidationError(
                    f"Sheet {name!r}, chunk {chunk_index} is a {type(chunk).__name__}, not a DataFrame",
                    target=self.target,
                    sheet=name,
                )
            if columns is None:
                columns = self._plan_columns(chunk)
            else:
                self._check_same_columns(name, chunk, columns, chunk_index)
            # Native Python values cost ~50 bytes a cell: convert a slice at a time.
            for start in range(0, len(chunk), CONVERT_ROWS):
                piece = chunk.iloc[start : start + CONVERT_ROWS]
                converted = [self._convert(name, piece.iloc[:, i], c) for i, c in enumerate(columns)]
                position = 0
                while position < len(piece):
                    if sheet is None or rows_in_sheet == capacity:
                        if sheet is not None:
                            self._finish_sheet(sheet, columns, rows_in_sheet)
                        part += 1
                        sheet = self._new_sheet(name, part, numbered, columns)
                        rows_in_sheet = 0
                    count = min(len(piece) - position, capacity - rows_in_sheet)
                    _write_rows(sheet, converted, position, count, first_row=1 + rows_in_sheet)
                    position += count
                    rows_in_sheet += count
                    self.sheets[sheet.name] = rows_in_sheet
        if sheet is None:  # no rows at all: still a sheet with its header
            columns = columns or []
            sheet = self._new_sheet(name, 1, False, columns)
            self.sheets[sheet.name] = 0
        self._finish_sheet(sheet, columns or [], rows_in_sheet)

    def _new_sheet(self, name: str, part: int, numbered: bool, columns: list[_Column]) -> Worksheet:
        suffix = f" ({part})" if numbered or part > 1 else ""
        sheet = self.workbook.add_worksheet(sanitize_sheet_name(name, self.workbook.sheetnames, suffix=suffix))
        for col, column in enumerate(columns):
            sheet.set_column(col, col, column.width)
        if columns:
            sheet.freeze_panes(1, 0)
            if self.streaming:  # row 0 must be written before the data rows
                for col, column in enumerate(columns):
                    sheet.write_string(0, col, column.header, self.header_format)
        return sheet

    def _finish_sheet(self, sheet: Worksheet, columns: list[_Column], n_rows: int) -> None:
        if not columns:
            return
        last_col = len(columns) - 1
        if self.streaming:
            sheet.autofilter(0, 0, max(n_rows, 1), last_col)
            return
        sheet.add_table(
            0,
            0,
            max(n_rows, 1),  # a table needs at least one data row, even an empty one
            last_col,
            {
                "name": self._table_name(sheet.name),
                "style": self.table_style,
                "columns": [{"header": c.header, "header_format": self.header_format} for c in columns],
            },
        )

    def _table_name(self, sheet_name: str) -> str:
        ascii_name = unicodedata.normalize("NFKD", sheet_name).encode("ascii", "ignore").decode()
        base = "tbl_" + (re.sub(r"[^A-Za-z0-9]+", "_", ascii_name).strip("_") or "sheet")
        name, n = base[:200], 1
        while name.lower() in self._table_names:
            n += 1
            name = f"{base[:200]}_{n}"
        self._table_names.add(name.lower())
        return name

    def _check_same_columns(self, name: str, chunk: pd.DataFrame, columns: list[_Column], chunk_index: int) -> None:
        expected = [c.source for c in columns]
        if list(chunk.columns) != expected:
            raise LoadValidationError(
                f"Sheet {name!r}, chunk {chunk_index} has columns {list(chunk.columns)}; the first "
                f"chunk had {expected}. Every chunk of a sheet needs the same columns.",
                target=self.target,
                sheet=name,
            )

    # ----------------------------------------------------------------- columns

    def _plan_columns(self, df: pd.DataFrame) -> list[_Column]:
        sample = df.head(WIDTH_SAMPLE_ROWS)
        headers = _unique_headers([str(c) for c in df.columns])
        columns = []
        for position, (label, header) in enumerate(zip(df.columns, headers, strict=True)):
            series = sample.iloc[:, position]
            kind = _kind(series)
            if kind in _NUMERIC_KINDS and self._is_percent(header):
                kind = "percent"
            num_format = self.number_formats.get(header, _DEFAULT_FORMATS.get(kind))
            width = _column_width(series, kind, header)
            columns.append(_Column(label, header, kind, self.number_format(num_format), width))
        return columns

    def _is_percent(self, header: str) -> bool:
        if self.percent_cols is not None:
            return header in self.percent_cols
        return bool(PERCENT_NAME.search(header))

    def _convert(self, sheet: str, series: pd.Series, column: _Column) -> _Converted:
        """One column of a chunk as native values (vectorized), ready for the cell loop."""
        kind = column.kind
        try:
            if kind in ("money", "percent", "float", "integer"):
                return _Converted(_none_where_missing(_as_float(series)), "write_number", column.fmt)
            if kind in ("date", "datetime"):
                return _Converted(
                    _none_where_missing(_excel_serial(series, self.timezone)),
                    "write_number",
                    column.fmt,
                )
            if kind == "bool":
                values = series.to_numpy(dtype=object, copy=True)
                values[pd.isna(series).to_numpy()] = None
                return _Converted(values.tolist(), "write_boolean", column.fmt)
        except (ValueError, TypeError, pa.ArrowException) as exc:
            raise LoadValidationError(
                f"Sheet {sheet!r}, column {column.header!r}: values do not fit the column's kind "
                f"({kind}, decided from the first chunk): {exc}",
                target=self.target,
                sheet=sheet,
                column=column.header,
            ) from exc
        return self._convert_text(sheet, series, column)

    def _convert_text(self, sheet: str, series: pd.Series, column: _Column) -> _Converted:
        text = series.astype("string")
        missing = text.isna().to_numpy()
        lengths = text.str.len().fillna(0).to_numpy()
        too_long = np.flatnonzero(lengths > EXCEL_MAX_CELL_CHARS)
        if too_long.size:
            row = series.index[too_long[0]]
            raise LoadValidationError(
                f"Sheet {sheet!r}, column {column.header!r}, row {row}: text of "
                f"{int(lengths[too_long[0]])} characters exceeds Excel's {EXCEL_MAX_CELL_CHARS} per cell; "
                "shorten it or export this column to Parquet/CSV instead",
                target=self.target,
                sheet=sheet,
                column=column.header,
                rows=[row],
            )
        values = text.to_numpy(dtype=object, copy=True)
        values[missing] = None
        risky = text.str.match(FORMULA_TRIGGER, na=False).to_numpy(dtype=bool)
        n_risky = int(risky.sum())
        if not n_risky:
            return _Converted(values.tolist(), "write_string", column.fmt)
        self.n_escaped += n_risky
        quoted = self.number_format(None, quote_prefix=True)
        row_formats = np.full(len(values), column.fmt, dtype=object)
        row_formats[risky] = quoted
        return _Converted(values.tolist(), "write_string", column.fmt, row_formats.tolist())


_DEFAULT_FORMATS = {
    "money": MONEY_FORMAT,
    "percent": PERCENT_FORMAT,
    "date": DATE_FORMAT,
    "datetime": DATETIME_FORMAT,
}


def _kind(series: pd.Series) -> str:
    dtype = series.dtype
    if isinstance(dtype, pd.ArrowDtype):
        t = dtype.pyarrow_dtype
        if pa.types.is_decimal(t):
            return "money"
        if pa.types.is_timestamp(t):
            return "datetime"
        if pa.types.is_date(t):
            return "date"
        if pa.types.is_boolean(t):
            return "bool"
        if pa.types.is_integer(t):
            return "integer"
        if pa.types.is_floating(t):
            return "float"
        return "text"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_object_dtype(dtype):
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        return {
            "decimal": "money",
            "date": "date",
            "datetime": "datetime",
            "datetime64": "datetime",
            "integer": "integer",
            "floating": "float",
            "mixed-integer-float": "float",
            "boolean": "bool",
        }.get(inferred, "text")
    return "text"


def _unique_headers(headers: list[str]) -> list[str]:
    """Excel table headers must be non-empty and unique ignoring case."""
    seen: set[str] = set()
    result = []
    for i, header in enumerate(headers, start=1):
        base = header.strip() or f"Column{i}"
        candidate, n = base, 1
        while candidate.lower() in seen:
            n += 1
            candidate = f"{base} ({n})"
        seen.add(candidate.lower())
        result.append(candidate)
    return result


def _as_float(series: pd.Series) -> np.ndarray:
    if isinstance(series.dtype, pd.ArrowDtype):
        # Arrow's decimal → double cast is correctly rounded: cents stay exact below 1e13.
        return pa.array(series).cast(pa.float64()).to_numpy(zero_copy_only=False)
    return series.to_numpy(dtype="float64", na_value=np.nan)


def _excel_serial(series: pd.Series, timezone: str) -> np.ndarray:
    """Dates/datetimes → Excel serial day numbers (float), NaN for missing."""
    values = pa.array(series, from_pandas=True)
    if pa.types.is_date(values.type):
        days = values.cast(pa.date32()).cast(pa.int32())
        micros = pc.multiply(days.cast(pa.int64()), _US_PER_DAY)
    else:
        if values.type.tz is not None:
            values = pc.local_timestamp(values.cast(pa.timestamp(values.type.unit, tz=timezone)))
        micros = values.cast(pa.timestamp("us"), safe=False).cast(pa.int64())
    as_float = micros.cast(pa.float64()).to_numpy(zero_copy_only=False)
    return as_float / _US_PER_DAY + _EXCEL_EPOCH_OFFSET_DAYS


def _none_where_missing(values: np.ndarray) -> list[Any]:
    cells = values.astype(object)
    cells[~np.isfinite(values)] = None  # NaN / inf: leave the cell empty
    return cells.tolist()


def _column_width(sample: pd.Series, kind: str, header: str) -> float:
    """Display width estimated from a sample, vectorized (no per-cell formatting)."""
    content = 10.0
    if kind in ("money", "percent", "float", "integer"):
        magnitudes = np.abs(_as_float(sample))
        finite = magnitudes[np.isfinite(magnitudes)]
        largest = float(finite.max()) if finite.size else 0.0
        digits = len(f"{int(largest):,}")
        content = {
            "money": digits + 3 + 3,  # ",00" and "R$ "
            "percent": len(f"{largest * 100:.2f}%"),
            "float": min(digits + 5, 12),
            "integer": len(str(int(largest))),
        }[kind] + 1  # a minus sign
    elif kind == "date":
        content = 10
    elif kind == "datetime":
        content = 16
    elif kind == "bool":
        content = 5
    elif len(sample):
        longest = sample.astype("string").str.len().max()
        content = 0 if pd.isna(longest) else float(longest)
    width = max(content, len(header) + 3)  # room for the filter button
    return float(min(max(width + 1, MIN_COLUMN_WIDTH), MAX_COLUMN_WIDTH))


def _write_rows(sheet: Worksheet, columns: list[_Converted], start: int, count: int, *, first_row: int) -> None:
    """Write rows ``start .. start+count`` of converted columns, row by row.

    XlsxWriter only accepts cells one at a time and constant-memory mode needs
    rows in order; all type work is done beforehand, column-wise, so this loop
    only hands native values to the typed ``write_*`` methods.
    """
    plan = [(col, getattr(sheet, c.write), c.values, c.row_formats, c.fmt) for col, c in enumerate(columns)]
    for offset in range(count):
        i = start + offset
        row = first_row + offset
        for col, write, values, row_formats, fmt in plan:
            value = values[i]
            if value is not None:
                write(row, col, value, row_formats[i] if row_formats is not None else fmt)
