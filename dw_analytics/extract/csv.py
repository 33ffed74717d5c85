"""Stream a large CSV file as pandas DataFrames, exactly typed, with a quarantine for bad rows.

Design (fast path / precise path):

1. The file is read in record-aligned blocks of ``block_size`` bytes (gzip and
   zip are decompressed on the fly, other encodings transcoded to UTF-8), so
   memory stays flat whatever the file size.
2. Each block is parsed by Arrow's CSV parser with the final column types.
   Decimal columns are read as raw text and converted exactly by a compiled
   kernel (``_decimal_text.c``, many times faster than Arrow's conversion)
   when every value is plain (``-1234.50``); otherwise Arrow converts them.
   Money never passes through float. A clean block costs one pass; a problem
   refuses the whole block.
3. A block Arrow refuses is cut in half at a record boundary and each half is
   retried; halves that still fail are bisected again down to small pieces,
   which are read as raw bytes (undecodable bytes replaced, see
   ``replace_undecodable``), with Arrow's ``invalid_row_handler`` reporting
   rows with a wrong field count and a vectorized cast that isolates each bad
   value. Each record's physical start line is computed from the block's
   first line and its newlines outside quotes, so quarantined rows carry the
   exact line (1-based, the header is line 1) even for quoted fields that span
   lines. Clean files never pay for line counting: the lines before the first
   failing block are counted once, by re-reading the file's start.
4. Parsing runs one block ahead of the consumer in a background thread
   (Arrow, numpy and file reads release the GIL), so reading overlaps with
   whatever the caller does with the previous chunk.

Rows yielded + rows quarantined == rows read, always. Blank lines are not rows.
Line endings are ``\n`` or ``\r\n``; quoting is RFC 4180 (``"`` doubled inside
quoted fields).
"""

from __future__ import annotations

import collections
import contextlib
import csv as _stdlib_csv
import io
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

from dw_analytics.core.exceptions import ConfigurationError
from dw_analytics.extract._csv_convert import (
    DATE_TYPE,
    ColumnPlan,
    ConversionError,
    arrow_type_for,
    decimal_type_for,
    decimals_from_text,
)
from dw_analytics.extract._csv_source import (
    Block,
    BlockSource,
    last_record_end,
    record_lines,
    replace_undecodable,
    split_block,
)
from dw_analytics.extract.exceptions import BadRowError

__all__ = ["CsvChunks", "QUARANTINE_COLUMNS", "read_csv_chunks"]

#: Columns of :attr:`CsvChunks.quarantine`.
QUARANTINE_COLUMNS = ("file", "line", "column", "value", "reason")

#: Bytes per block handed to Arrow's parser (it splits them across threads).
DEFAULT_BLOCK_SIZE = 4 << 20
# Blocks parsed at the same time, one thread each.
_PARALLEL_BLOCKS = 2
# Blocks parsed ahead of the consumer by the read-ahead thread.
_READ_AHEAD_BLOCKS = 1
# Failing pieces at most this big go to the precise (single-threaded, raw) path.
_PRECISE_PATH_BYTES = 256 << 10
# Column types not given by the caller are inferred from this much of the file.
_INFERENCE_BYTES = 1 << 20

OnBadLines = Literal["quarantine", "error"]


class CsvChunks:
    """Iterator of DataFrames read from a CSV file, with running counts and a quarantine.

    Create it with :func:`read_csv_chunks`. Iterate it once; the attributes are
    up to date after each chunk:

    Attributes:
        file: the path read.
        columns: the header's column names (de-duplicated like pandas: ``a``, ``a.1``).
        encoding: the encoding used (the detected one for ``encoding="auto"``).
        n_rows: data rows read so far (blank lines are not rows). The reader parses
            up to one block ahead of the chunk being yielded, so during iteration
            ``n_rows >= n_yielded + n_errors``; once iteration ends they are equal.
        n_errors: rows quarantined so far.
        n_yielded: rows yielded so far.

    To stop early, use it as a context manager or call :meth:`close`: that
    stops the read-ahead thread and closes the file.
    """

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        sep: str = ",",
        decimal: str = ".",
        thousands: str | None = None,
        encoding: str = "utf-8",
        chunksize: int = 100_000,
        usecols: Sequence[str] | None = None,
        dtypes: Mapping[str, Any] | None = None,
        decimals: Mapping[str, int | tuple[int, int]] | None = None,
        dates: Sequence[str] | Mapping[str, str] | None = None,
        on_bad_lines: OnBadLines = "quarantine",
        block_size: int = DEFAULT_BLOCK_SIZE,
    ) -> None:
        _check_options(sep, decimal, thousands, chunksize, on_bad_lines, block_size)
        self.file = str(path)
        self.chunksize = chunksize
        self.on_bad_lines = on_bad_lines
        self._sep = sep
        self._decimal = decimal
        self._thousands = thousands
        self._quote = b'"'
        self._source = BlockSource(Path(path), encoding=encoding, block_size=block_size)
        self.encoding = self._source.encoding
        self.columns = _parse_header(self._source.header_bytes, sep)
        self._selected = _select_columns(self.columns, usecols, self.file)
        self._plans = self._explicit_plans(dtypes or {}, decimals or {}, dates or {})
        self._schema: pa.Schema | None = None  # fixed once the first block is seen
        # Decimal columns the fast path reads as text for the plain-decimal kernel.
        self._text_decimals: frozenset[str] = frozenset()
        self.n_rows = 0
        self.n_errors = 0
        self.n_yielded = 0
        self._quarantine_rows: list[tuple[str, int, str | None, str, str]] = []
        self._chunks = self._generate()

    # --- public surface ------------------------------------------------------------

    def __iter__(self) -> Iterator[pd.DataFrame]:
        return self

    def __next__(self) -> pd.DataFrame:
        return next(self._chunks)

    def __enter__(self) -> CsvChunks:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading and close the file (also done automatically at the end)."""
        self._chunks.close()
        self._source.close()

    @property
    def quarantine(self) -> pd.DataFrame:
        """Rows set aside so far: ``file``, ``line``, ``column``, ``value``, ``reason``.

        ``column`` is missing (NaN) for rows with a wrong number of fields; their
        ``value`` is the whole raw record.
        """
        frame = pd.DataFrame(self._quarantine_rows, columns=list(QUARANTINE_COLUMNS))
        text = {name: "str" for name in QUARANTINE_COLUMNS if name != "line"}
        return frame.astype({**text, "line": "int64"})

    def write_quarantine(self, path: str | PathLike[str]) -> Path:
        """Write :attr:`quarantine` as a UTF-8 CSV file and return its path.

        Example:
            >>> chunks = read_csv_chunks("vendas.csv", decimals={"total": 2})  # doctest: +SKIP
            >>> frames = list(chunks)  # doctest: +SKIP
            >>> chunks.write_quarantine("vendas.quarantine.csv")  # doctest: +SKIP
            PosixPath('vendas.quarantine.csv')
        """
        target = Path(path)
        self.quarantine.to_csv(target, index=False, encoding="utf-8")
        return target

    def __repr__(self) -> str:
        return (
            f"<CsvChunks {self.file!r}: {self.n_rows} rows read, {self.n_yielded} yielded, {self.n_errors} quarantined>"
        )

    # --- set-up ----------------------------------------------------------------------

    def _explicit_plans(
        self,
        dtypes: Mapping[str, Any],
        decimals: Mapping[str, Any],
        dates: Sequence[str] | Mapping[str, str],
    ) -> dict[str, ColumnPlan]:
        date_formats: Mapping[str, str | None]
        if isinstance(dates, str):
            raise ConfigurationError(f"dates must be a list of columns or a mapping, got {dates!r}")
        date_formats = dates if isinstance(dates, Mapping) else dict.fromkeys(dates)
        named = [*dtypes, *decimals, *date_formats]
        duplicated = sorted({c for c in named if named.count(c) > 1})
        if duplicated:
            raise ConfigurationError(
                f"column(s) {duplicated} appear in more than one of dtypes, decimals, dates; give each column one type"
            )
        unknown = [c for c in named if c not in self.columns]
        if unknown:
            raise ConfigurationError(f"{self.file}: column(s) {unknown} are not in the header {self.columns}")
        plans: dict[str, ColumnPlan] = {}
        for column, dtype in dtypes.items():
            plans[column] = self._plan(column, arrow_type_for(column, dtype))
        for column, spec in decimals.items():
            plans[column] = self._plan(column, decimal_type_for(column, spec))
        for column, date_format in date_formats.items():
            plans[column] = ColumnPlan(column, DATE_TYPE, date_format=date_format or None)
        return {c: plans[c] for c in self._selected if c in plans}

    def _plan(self, column: str, target: pa.DataType) -> ColumnPlan:
        return ColumnPlan(column, target, thousands=self._thousands, decimal=self._decimal)

    def _infer_types(self, block: Block) -> None:
        """Fix every column's type: the caller's, or Arrow's inference on the file's start."""
        end = block.end
        if len(block) > _INFERENCE_BYTES:
            cut = last_record_end(block.data, self._quote, block.start, block.start + _INFERENCE_BYTES)
            end = cut + 1 if cut >= 0 else block.end
        sample = Block(block.data, block.start, end, block.first_line)
        copies = replace_undecodable(sample)
        if copies is not None:
            # Invalid UTF-8 would fail the read on a row with a wrong field count;
            # replaced, it makes its column text, so the offending rows are
            # quarantined with a hint.
            sample = copies[0]
        column_types = {name: pa.string() for name in self._plans}
        table = self._read(sample, column_types, handler=lambda row: "skip", threads=True)
        for name in self._selected:
            if name in self._plans:
                continue
            inferred = table.schema.field(name).type
            if pa.types.is_null(inferred):  # all-empty sample: text
                inferred = pa.string()
            plan = self._plan(name, inferred)
            if self._thousands and pa.types.is_string(inferred):
                plan = self._numeric_with_thousands(name, table[name]) or plan
            self._plans[name] = plan
        self._plans = {name: self._plans[name] for name in self._selected}
        self._schema = pa.schema([(name, plan.target) for name, plan in self._plans.items()])
        self._text_decimals = frozenset(name for name, plan in self._plans.items() if plan.reads_decimal_text)

    def _numeric_with_thousands(self, name: str, strings: pa.ChunkedArray) -> ColumnPlan | None:
        # Arrow cannot infer "1.234,56" as a number; try once the separators are gone.
        for candidate in (pa.int64(), pa.float64()):
            plan = self._plan(name, candidate)
            try:
                plan.convert(strings)
            except ConversionError:
                continue
            return plan
        return None

    # --- reading ---------------------------------------------------------------------

    def _parsed_tables(self) -> Iterator[list[pa.Table]]:
        """Good rows of each block, in file order (runs in the read-ahead thread).

        Line numbers are only needed for bad rows, so newlines are not counted
        while every block is clean: at the first failing block, the lines
        before it are counted once by re-reading the file's start (the blocks
        are cut identically), and from then on every block is counted.
        """
        line: int | None = None  # physical line of the next block, once counted
        for index, (raw_block, fast) in enumerate(self._fast_parsed_blocks()):
            if isinstance(fast, pa.Table):
                tables = [fast]
                self.n_rows += fast.num_rows
            else:
                if line is None:
                    line = self._lines_before_block(index)
                tables = self._parse_failed(replace(raw_block, first_line=line))
            if line is not None:
                line += raw_block.newline_count()
            # Arrow's allocator keeps freed parse buffers; hand them back so the
            # peak RSS stays at about one block's worth.
            pa.default_memory_pool().release_unused()
            yield tables

    def _fast_parsed_blocks(self) -> Iterator[tuple[Block, pa.Table | None]]:
        """Each block with its fast-path table (None when refused), in file order.

        Blocks are parsed ``_PARALLEL_BLOCKS`` at a time, each on one thread:
        independent blocks need no synchronisation, so a busy machine that
        pauses one thread does not stall the others (Arrow's own multi-threaded
        parse waits for its slowest piece).
        """

        def parse(block: Block) -> pa.Table | None:
            try:
                return self._read_fast(block, threads=False)
            except (pa.ArrowInvalid, ConversionError):
                return None

        in_flight: collections.deque[tuple[Block, Future[pa.Table | None]]] = collections.deque()
        with ThreadPoolExecutor(_PARALLEL_BLOCKS, thread_name_prefix="csv-parse") as pool:
            for block in self._source.blocks():
                if self._schema is None:
                    self._infer_types(block)
                in_flight.append((block, pool.submit(parse, block)))
                if len(in_flight) >= _PARALLEL_BLOCKS:
                    done, future = in_flight.popleft()
                    yield done, future.result()
            while in_flight:
                done, future = in_flight.popleft()
                yield done, future.result()

    def _lines_before_block(self, index: int) -> int:
        """Physical line where block ``index`` starts, by re-reading the blocks before it."""
        source = BlockSource(Path(self.file), encoding=self.encoding, block_size=self._source.block_size)
        line = source.first_data_line
        try:
            for _, block in zip(range(index), source.blocks(), strict=False):
                line += block.newline_count()
        finally:
            source.close()
        return line

    def _generate(self) -> Iterator[pd.DataFrame]:
        pending: list[pa.Table] = []
        pending_rows = 0
        with _ReadAhead(self._parsed_tables(), depth=_READ_AHEAD_BLOCKS) as parsed:
            for tables in parsed:
                for table in tables:
                    if not table.num_rows:
                        continue
                    pending.append(table)
                    pending_rows += table.num_rows
                    while pending_rows >= self.chunksize:
                        buffered = pa.concat_tables(pending)
                        yield self._emit(buffered.slice(0, self.chunksize))
                        rest = buffered.slice(self.chunksize)
                        pending, pending_rows = ([rest] if rest.num_rows else []), rest.num_rows
        if pending_rows:
            yield self._emit(pa.concat_tables(pending))

    def _emit(self, table: pa.Table) -> pd.DataFrame:
        self.n_yielded += table.num_rows
        return table.to_pandas(types_mapper=pd.ArrowDtype)

    def _parse(self, block: Block) -> list[pa.Table]:
        """Good rows of ``block`` as tables in file order; bad rows go to the quarantine."""
        try:
            table = self._read_fast(block)
        except (pa.ArrowInvalid, ConversionError):
            return self._parse_failed(block)
        self.n_rows += table.num_rows
        return [table]

    def _parse_failed(self, block: Block) -> list[pa.Table]:
        """A block the fast path refused: bisect it, then read small pieces precisely."""
        if len(block) > _PRECISE_PATH_BYTES:
            halves = split_block(block, self._quote)
            if halves is not None:
                return [*self._parse(halves[0]), *self._parse(halves[1])]
        table = self._read_precise(block)
        self.n_rows += table.num_rows
        return [table]

    def _read_fast(
        self, block: Block, *, threads: bool = True, text_decimals: frozenset[str] | None = None
    ) -> pa.Table:
        """Parse a block with the final types; raise at the first problem."""
        if text_decimals is None:
            text_decimals = self._text_decimals
        column_types = {
            name: pa.binary() if name in text_decimals else plan.read_type for name, plan in self._plans.items()
        }
        table = self._read(block, column_types, handler=None, threads=threads)
        for name in text_decimals:
            values = decimals_from_text(table[name], self._plans[name].target, self._decimal)
            if values is None:
                # A value that is not plain text: Arrow's general parser decides. When it
                # takes the block, the file writes numbers in a way the kernel does not
                # read (blanks, exponents), so later blocks go straight to Arrow.
                table = self._read_fast(block, threads=threads, text_decimals=frozenset())
                self._text_decimals = frozenset()
                return table
            table = table.set_column(table.schema.get_field_index(name), name, values)
        # One scan of the raw bytes rules out NUL bytes for every text column at once.
        nul_bytes = block.data.find(b"\x00", block.start, block.end) >= 0
        for index, (name, plan) in enumerate(self._plans.items()):
            column = table[name]
            converted = plan.convert(column, nul_bytes=nul_bytes)
            if converted is not column:
                table = table.set_column(index, name, converted)
        return table.cast(self._schema)

    def _read(
        self,
        block: Block,
        column_types: Mapping[str, pa.DataType],
        *,
        handler: Any,
        threads: bool,
        arrow_block: int = 1 << 20,
    ) -> pa.Table:
        try:
            return self._read_with(block, column_types, handler=handler, threads=threads, arrow_block=arrow_block)
        except pa.ArrowInvalid as exc:
            # A record longer than Arrow's parse block ("straddling object"): read the block whole.
            if "straddling" not in str(exc) or arrow_block > block.end - block.start:
                raise
            whole = block.end - block.start + 1
            return self._read_with(block, column_types, handler=handler, threads=threads, arrow_block=whole)

    def _read_with(
        self,
        block: Block,
        column_types: Mapping[str, pa.DataType],
        *,
        handler: Any,
        threads: bool,
        arrow_block: int,
    ) -> pa.Table:
        return pv.read_csv(
            pa.BufferReader(block.buffer()),
            read_options=pv.ReadOptions(column_names=self.columns, use_threads=threads, block_size=arrow_block),
            parse_options=pv.ParseOptions(
                delimiter=self._sep,
                newlines_in_values=block.data.find(self._quote, block.start, block.end) >= 0,
                invalid_row_handler=handler,
            ),
            convert_options=pv.ConvertOptions(
                column_types=column_types,
                include_columns=self._selected,
                decimal_point=self._decimal,
                strings_can_be_null=True,
            ),
        )

    def _read_precise(self, block: Block) -> pa.Table:
        """Read a small failing block from raw bytes, quarantining each bad row precisely."""
        invalid: list[tuple[int, int, int, str]] = []

        def collect(row: Any) -> str:
            invalid.append((row.number, row.expected_columns, row.actual_columns, row.text))
            return "skip"

        binary = dict.fromkeys(self._selected, pa.binary())
        # pyarrow cannot hand a ragged row that is not UTF-8 to ``collect``: such a
        # block is read from UTF-8 copies, and where they differ a field was undecodable.
        copies = replace_undecodable(block)
        raw = self._read(block if copies is None else copies[0], binary, handler=collect, threads=False)
        undecodable: dict[str, np.ndarray] = {}
        if copies is not None:
            doubled = self._read(copies[1], binary, handler=lambda row: "skip", threads=False)
            undecodable = {
                name: pc.not_equal(raw[name], doubled[name]).fill_null(False).to_numpy() for name in self._plans
            }
        lines = self._record_lines(block, raw.num_rows + len(invalid))
        bad_records = np.array([number - 1 for number, *_ in invalid], dtype=np.int64)
        good_lines = np.delete(lines, bad_records)

        entries: list[tuple[str, int, str | None, str, str]] = [
            (self.file, int(lines[number - 1]), None, text, self._wrong_field_count(text, expected, actual))
            for number, expected, actual, text in invalid
        ]
        bad_rows = np.zeros(raw.num_rows, dtype=bool)
        columns = []
        for name, plan in self._plans.items():
            raw_column = raw[name].combine_chunks()
            values, bad, reasons = plan.convert_rowwise(raw_column, undecodable.get(name))
            columns.append(values)
            for row, reason in reasons.items():
                if not bad_rows[row]:
                    value = raw_column[row].as_py().decode("utf-8", "replace")
                    entries.append((self.file, int(good_lines[row]), name, value, reason))
            bad_rows |= bad
        entries.sort(key=lambda entry: entry[1])
        self._quarantine(entries)
        table = pa.Table.from_arrays(columns, schema=self._schema)
        return table.filter(pa.array(~bad_rows)) if bad_rows.any() else table

    def _wrong_field_count(self, text: str, expected: int, actual: int) -> str:
        """Why a record has the wrong number of fields, naming a quote that is never closed."""
        counts = f"expected {expected} fields, found {actual}"
        # RFC 4180 quotes pair up within a record; an odd count is a quoted field
        # left open, which the parser reads on across the lines below it.
        if text.count(self._quote.decode()) % 2:
            return (
                "a quote opened in this row is never closed, so the lines after it, up to the end of the file "
                f"or the next quote, were read into one field ({counts})"
            )
        return counts

    def _record_lines(self, block: Block, n_records: int) -> np.ndarray:
        lines = record_lines(block, self._quote)
        if len(lines) == n_records:
            return lines
        # Quote characters inside unquoted fields break the parity rule; the
        # standard library's reader reports physical lines record by record.
        text = io.StringIO(block.tobytes().decode("utf-8", "replace"), newline="")
        reader = _stdlib_csv.reader(text, delimiter=self._sep)
        starts, previous = [], 0
        for record in reader:
            if record:
                starts.append(block.first_line + previous)
            previous = reader.line_num
        if len(starts) != n_records:
            raise BadRowError(
                f"{self.file}: cannot locate the records starting near line {block.first_line}; "
                "check the quoting there (a field with a quote, separator or newline must be "
                'enclosed in double quotes, with inner quotes doubled: "a ""b"" c")',
                file=self.file,
                line=block.first_line,
            )
        return np.asarray(starts, dtype=np.int64)

    def _quarantine(self, entries: list[tuple[str, int, str | None, str, str]]) -> None:
        if not entries:
            return
        # A NUL byte in a value would make the quarantine itself unstorable (PostgreSQL
        # text refuses it): show it as U+FFFD, like undecodable bytes.
        entries = [
            (file, line, column, value.replace("\x00", "\ufffd"), why) for file, line, column, value, why in entries
        ]
        if self.on_bad_lines == "error":
            file, line, column, value, reason = entries[0]
            where = f"line {line}" + (f", column {column!r}" if column is not None else "")
            raise BadRowError(
                f"{file}, {where}: {reason}: {value!r}",
                file=file,
                line=line,
                column=column,
                value=value,
                reason=reason,
            )
        self._quarantine_rows.extend(entries)
        self.n_errors += len(entries)
        self.n_rows += len(entries)


def read_csv_chunks(
    path: str | PathLike[str],
    *,
    sep: str = ",",
    decimal: str = ".",
    thousands: str | None = None,
    encoding: str = "utf-8",
    chunksize: int = 100_000,
    usecols: Sequence[str] | None = None,
    dtypes: Mapping[str, Any] | None = None,
    decimals: Mapping[str, int | tuple[int, int]] | None = None,
    dates: Sequence[str] | Mapping[str, str] | None = None,
    on_bad_lines: OnBadLines = "quarantine",
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> CsvChunks:
    """Read a CSV file as an iterator of DataFrames of ``chunksize`` rows, streaming.

    Memory is bounded by the chunk and a few read blocks, never by the file.
    Columns come back with pandas' pyarrow backend (``pd.ArrowDtype``), like
    ``pd.read_csv(dtype_backend="pyarrow")``: nullable integers, exact decimals,
    ``timestamp[us]`` dates, ``string`` text. Empty fields and the usual null
    markers (``NA``, ``NULL``, ``nan``...) are null.

    Args:
        path: a ``.csv`` file, gzip-compressed or inside a single-member zip
            (detected from the content, not the name).
        sep: the field separator (one character), e.g. ``";"``.
        decimal: the decimal mark of numbers, e.g. ``","``.
        thousands: the thousands separator to ignore in numbers, e.g. ``"."``.
        encoding: ``"utf-8"`` (a BOM is skipped), ``"cp1252"``, ``"latin-1"``,
            any Python codec, or ``"auto"`` (BOM, then charset-normalizer on the
            first MiB).
        chunksize: rows per DataFrame (the last one may be shorter).
        usecols: columns to keep, in file order; the others are not converted.
        dtypes: ``{column: dtype}`` (``"int64"``, ``"float64"``, ``"string"``,
            ``"bool"``, a pyarrow type or ``pd.ArrowDtype``). Columns not named in
            ``dtypes``, ``decimals`` or ``dates`` get the type Arrow infers from
            the first MiB; a later value that does not fit it is quarantined.
        decimals: ``{column: scale}`` or ``{column: (precision, scale)}``: read
            exactly into ``decimal128(precision, scale)`` (precision 18 by
            default), never through float. A value with more decimal places
            than the scale is quarantined, never rounded (trailing zeros are
            fine: ``1.230`` fits scale 2); one beyond the precision too.
        dates: columns holding ISO 8601 dates/times (a list), or
            ``{column: strptime format}`` such as ``{"data": "%d/%m/%Y"}``.
            Dates outside the years 1-9999 (which Python cannot hold) are quarantined.
        on_bad_lines: ``"quarantine"`` (default) sets bad rows aside in
            ``.quarantine`` with file, line, column, value and reason;
            ``"error"`` raises :class:`BadRowError` at the first one.
        block_size: bytes per parsed block (default 4 MiB). Two blocks are
            parsed at once and one is read ahead, so this sets most of the
            memory beyond the chunk: at 10M rows of a 9-column file, 8 MiB
            blocks were about 4% faster and peaked about 25 MB higher.

    Returns:
        A :class:`CsvChunks`: iterate it for DataFrames; it also exposes
        ``.quarantine``, ``.n_rows``, ``.n_errors`` and ``.write_quarantine(path)``.
        A file with only a header yields nothing (``n_rows == 0``).

    Raises:
        SourceNotFoundError: the file does not exist.
        EmptySourceError: the file has no header line.
        UnsupportedSourceError: unknown encoding, undecodable bytes, zip with several files.
        ConfigurationError: inconsistent options or unknown columns.
        BadRowError: with ``on_bad_lines="error"``, at the first bad row.

    Example:
        >>> from transforms.rollup import rollup
        >>> chunks = read_csv_chunks(  # doctest: +SKIP
        ...     "vendas.csv", sep=";", decimal=",", thousands=".",
        ...     decimals={"total": 2}, dates={"data": "%d/%m/%Y"},
        ... )
        >>> by_category = rollup(chunks, by="categoria", receita=("total", "sum"))  # doctest: +SKIP
        >>> chunks.n_rows == chunks.n_yielded + chunks.n_errors  # doctest: +SKIP
        True
        >>> chunks.write_quarantine("vendas.quarantine.csv")  # doctest: +SKIP
    """
    return CsvChunks(
        path,
        sep=sep,
        decimal=decimal,
        thousands=thousands,
        encoding=encoding,
        chunksize=chunksize,
        usecols=usecols,
        dtypes=dtypes,
        decimals=decimals,
        dates=dates,
        on_bad_lines=on_bad_lines,
        block_size=block_size,
    )


def _check_options(
    sep: str,
    decimal: str,
    thousands: str | None,
    chunksize: int,
    on_bad_lines: str,
    block_size: int,
) -> None:
    if not (isinstance(sep, str) and len(sep) == 1 and sep not in '\r\n"'):
        raise ConfigurationError(f"sep must be one character (not a quote or newline), got {sep!r}")
    if not (isinstance(decimal, str) and len(decimal) == 1):
        raise ConfigurationError(f"decimal must be one character, got {decimal!r}")
    if thousands is not None and not (isinstance(thousands, str) and len(thousands) == 1):
        raise ConfigurationError(f"thousands must be one character or None, got {thousands!r}")
    if decimal == sep or thousands == decimal:
        raise ConfigurationError(f"sep={sep!r}, decimal={decimal!r} and thousands={thousands!r} must differ")
    if not (isinstance(chunksize, int) and chunksize > 0):
        raise ConfigurationError(f"chunksize must be a positive integer, got {chunksize!r}")
    if on_bad_lines not in ("quarantine", "error"):
        raise ConfigurationError(f"on_bad_lines must be 'quarantine' or 'error', got {on_bad_lines!r}")
    if block_size < 1024:
        raise ConfigurationError(f"block_size must be at least 1024 bytes, got {block_size}")


def _parse_header(header: bytes, sep: str) -> list[str]:
    text = header.decode("utf-8", "replace").rstrip("\r\n")
    names = next(_stdlib_csv.reader(io.StringIO(text, newline=""), delimiter=sep), [])
    columns: list[str] = []
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        name = name or f"Unnamed: {index}"
        if name in seen:  # pandas' mangling: a, a.1, a.2
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        seen.setdefault(name, 0)
        columns.append(name)
    return columns


def _select_columns(columns: list[str], usecols: Sequence[str] | None, file: str) -> list[str]:
    if usecols is None:
        return list(columns)
    if isinstance(usecols, str):
        usecols = [usecols]
    unknown = [c for c in usecols if c not in columns]
    if unknown:
        raise ConfigurationError(f"{file}: usecols {unknown} are not in the header {columns}")
    return [c for c in columns if c in set(usecols)]


class _ReadAhead:
    """Run an iterator in a background thread, ``depth`` items ahead of the consumer.

    Parsing (Arrow, numpy and file reads release the GIL) then overlaps with
    whatever the consumer does with the previous chunk, e.g. a ``rollup``.
    Exceptions are re-raised in the consumer at the point they occurred.
    """

    _DONE = object()

    def __init__(self, source: Iterator[Any], *, depth: int) -> None:
        self._source = source
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="csv-read-ahead", daemon=True)

    def __enter__(self) -> Iterator[Any]:
        self._thread.start()
        return self._iterate()

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):  # unblock a producer waiting on a full queue
                self._queue.get(timeout=0.05)
        self._thread.join()

    def _run(self) -> None:
        try:
            for item in self._source:
                if self._stop.is_set():
                    return
                self._queue.put((item, None))
        except BaseException as exc:  # re-raised in the consumer
            self._queue.put((self._DONE, exc))
            return
        finally:
            if self._stop.is_set():
                close = getattr(self._source, "close", None)
                if close is not None:
                    close()
        self._queue.put((self._DONE, None))

    def _iterate(self) -> Iterator[Any]:
        while True:
            item, error = self._queue.get()
            if error is not None:
                raise error
            if item is self._DONE:
                return
            yield item
