"""Raw side of the CSV reader: open, decompress, decode, and cut into record-aligned blocks.

A block is UTF-8 bytes that start at the beginning of a record and end at the
end of one, tagged with the physical line number (1-based) of its first byte.
Record boundaries are newlines outside quotes; a newline is outside quotes
when the number of quote characters before it (since the last boundary) is
even. That holds for RFC 4180 quoting (``"a ""quoted"" word"``, fields with
embedded separators and newlines), which is what the parser accepts.
"""

from __future__ import annotations

import codecs
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa

from dw_analytics.extract.exceptions import (
    EmptySourceError,
    SourceNotFoundError,
    UnsupportedSourceError,
)

_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"
_UTF8_BOM = codecs.BOM_UTF8
_SAMPLE_BYTES = 1 << 20  # what encoding="auto" looks at
_CHAOS_TIE = 0.05  # charset-normalizer "chaos" difference treated as a tie
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # an undecodable byte after errors="surrogateescape"


@dataclass(frozen=True)
class Block:
    """Whole records: ``data[start:end]`` (UTF-8); ``first_line`` is the physical line at ``start``.

    Blocks share their parent's bytes (no copy when a block is split).
    """

    data: bytes | bytearray
    start: int
    end: int
    first_line: int

    def __len__(self) -> int:
        return self.end - self.start

    def buffer(self) -> pa.Buffer:
        """The block as an Arrow buffer, without copying."""
        return pa.py_buffer(self.data).slice(self.start, self.end - self.start)

    def tobytes(self) -> bytes:
        return bytes(self.data[self.start : self.end])

    def newline_count(self) -> int:
        # numpy counts ~2x faster than bytes.count and releases the GIL.
        view = np.frombuffer(self.data, dtype=np.uint8, count=len(self), offset=self.start)
        return int(np.count_nonzero(view == ord("\n")))


def open_binary(path: Path) -> BinaryIO:
    """Open ``path`` for reading, transparently decompressing gzip and single-member zip files."""
    if not path.exists():
        raise SourceNotFoundError(
            f"CSV file not found: {path}; check the path (relative paths are resolved from {Path.cwd()})",
            file=str(path),
        )
    if path.is_dir():
        raise SourceNotFoundError(f"{path} is a directory, not a CSV file", file=str(path))
    with path.open("rb") as probe:
        magic = probe.read(4)
    if magic.startswith(_GZIP_MAGIC):
        # Arrow's zlib stream decompresses outside the GIL.
        return pa.CompressedInputStream(pa.OSFile(str(path), "rb"), "gzip")
    if magic == _ZIP_MAGIC:
        archive = zipfile.ZipFile(path)
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) != 1:
            names = [m.filename for m in members]
            archive.close()
            raise UnsupportedSourceError(
                f"{path}: a zip input must hold exactly one file, found {len(names)}: {names}; "
                "extract the CSV you want and pass its path",
                file=str(path),
            )
        return archive.open(members[0])
    return path.open("rb")


def detect_encoding(sample: bytes) -> str:
    """Guess the encoding of a file from its first bytes (BOM first, then charset-normalizer).

    Pure ASCII and valid UTF-8 samples are UTF-8; anything else is handed to
    charset-normalizer. The sample may end in the middle of a multi-byte
    character, which is tolerated.
    """
    if sample.startswith(_UTF8_BOM):
        return "utf-8"
    for bom, name in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32")):
        if sample.startswith(bom):
            return name
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = from_bytes(sample)
    best = matches.best()
    if best is None:
        raise UnsupportedSourceError(
            "could not detect the file's text encoding; pass encoding= explicitly (e.g. 'utf-8' or 'cp1252')"
        )
    # Single-byte Latin code pages are often indistinguishable on a sample
    # (cp1250 vs cp1252 differ on 'ã'/'ă'). Windows-1252 is what Excel and
    # Windows export in Western locales, so it wins near-ties.
    for match in matches:
        if match.encoding == "cp1252" and match.chaos <= best.chaos + _CHAOS_TIE:
            return "cp1252"
    return best.encoding


def normalize_encoding(encoding: str) -> str:
    """Canonical codec name; raises UnsupportedSourceError for unknown encodings."""
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise UnsupportedSourceError(
            f"unknown encoding {encoding!r}; use e.g. 'utf-8', 'cp1252', 'latin-1' or 'auto'"
        ) from None


class BlockSource:
    """Iterate a CSV file as record-aligned UTF-8 blocks, after its header record.

    Args:
        path: the file (plain, gzip or single-member zip).
        encoding: a codec name or ``"auto"``.
        block_size: target bytes per block (a block grows when one record is larger).
        quote: the quote character.
    """

    def __init__(self, path: Path, *, encoding: str, block_size: int, quote: str = '"') -> None:
        self.path = path
        self.block_size = block_size
        self.quote = quote.encode()
        self._stream = open_binary(path)
        self._eof = False
        first = self._read_raw(_SAMPLE_BYTES)
        if encoding == "auto":
            encoding = detect_encoding(first[:_SAMPLE_BYTES])
        self.encoding = normalize_encoding(encoding)
        if self.encoding in ("utf-8", "utf-8-sig"):
            self._decoder = None
            if first.startswith(_UTF8_BOM):
                first = first[len(_UTF8_BOM) :]
        else:
            self._decoder = codecs.getincrementaldecoder(self.encoding)()
            first = self._transcode(first, final=self._eof)
            if first.startswith(_UTF8_BOM):  # a BOM decoded from e.g. UTF-16 input
                first = first[len(_UTF8_BOM) :]
        self._pending = first
        self.header_bytes = self._take_header()
        #: Physical line (1-based) where the data starts, after the header.
        self.first_data_line = 1 + self.header_bytes.count(b"\n")

    # --- reading -----------------------------------------------------------------

    def _read_raw(self, size: int) -> bytes:
        data = read_exactly(self._stream, size)
        if len(data) < size:
            self._eof = True
        return data

    def _transcode(self, raw: bytes, *, final: bool) -> bytes:
        try:
            return self._decoder.decode(raw, final=final).encode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnsupportedSourceError(
                f"{self.path}: cannot decode the file as {self.encoding} ({exc.reason}); "
                "pass the right encoding= or encoding='auto'",
                file=str(self.path),
            ) from None

    def _read_more(self) -> bytes:
        if self._eof:
            return b""
        raw = self._read_raw(self.block_size)
        if self._decoder is not None:
            return self._transcode(raw, final=self._eof)
        return raw

    def _take_header(self) -> bytes:
        while True:
            end = first_record_end(self._pending, self.quote)
            if end >= 0 or self._eof:
                break
            more = self._read_more()
            if not more:
                break
            self._pending += more
        if end < 0:
            header, self._pending = self._pending, b""
        else:
            header, self._pending = self._pending[: end + 1], self._pending[end + 1 :]
        if b"\r" in header.rstrip(b"\r\n"):
            raise UnsupportedSourceError(
                f"{self.path}: lines end with a bare carriage return (classic Mac OS); "
                "convert the file to \\n or \\r\\n line endings",
                file=str(self.path),
            )
        if not header.strip():
            raise EmptySourceError(
                f"{self.path} is empty: no header line; a CSV needs a header with the column names",
                file=str(self.path),
            )
        return header

    def blocks(self) -> Iterator[Block]:
        """Yield record-aligned blocks until the end of the file, then close it.

        Each block's ``first_line`` is 0: the caller numbers lines, and only
        counts newlines once a line number is needed.
        """
        try:
            carry = self._pending
            self._pending = b""
            while True:
                if self._eof:
                    if carry:
                        yield Block(carry, 0, len(carry), 0)
                    return
                data = self._fill(carry)
                if self._eof:
                    carry = data
                    continue
                cut = last_record_end(data, self.quote, 0, len(data))
                if cut < 0:  # one record larger than the block: read on
                    carry = bytes(data)
                    continue
                yield Block(data, 0, cut + 1, 0)
                carry = bytes(data[cut + 1 :])
        finally:
            self.close()

    def _fill(self, carry: bytes) -> bytes | bytearray:
        """``carry`` followed by the next ``block_size`` bytes of the file.

        UTF-8 input is read straight into one buffer behind the carried bytes
        (no concatenation copy of the block).
        """
        if self._decoder is not None:
            return carry + self._read_more()
        data = bytearray(len(carry) + self.block_size)
        data[: len(carry)] = carry
        view = memoryview(data)[len(carry) :]
        filled = 0
        while filled < self.block_size:
            n = self._stream.readinto(view[filled:])
            if not n:
                self._eof = True
                break
            filled += n
        view.release()
        if filled < self.block_size:
            del data[len(carry) + filled :]
        return data

    def close(self) -> None:
        self._stream.close()


def first_record_end(data: bytes, quote: bytes, start: int = 0, end: int | None = None) -> int:
    """Index of the newline that ends the first record of ``data[start:end]``, or -1."""
    end = len(data) if end is None else end
    pos = data.find(b"\n", start, end)
    if pos < 0 or data.find(quote, start, pos) < 0:
        return pos
    quotes = data.count(quote, start, pos)
    while quotes % 2:
        nxt = data.find(b"\n", pos + 1, end)
        if nxt < 0:
            return -1
        quotes += data.count(quote, pos, nxt)
        pos = nxt
    return pos


def last_record_end(data: bytes, quote: bytes, start: int, end: int) -> int:
    """Index of the last newline of ``data[start:end]`` that ends a record, or -1.

    ``start`` must be a record boundary.
    """
    pos = data.rfind(b"\n", start, end)
    if pos < 0 or data.find(quote, start, end) < 0:
        return pos
    quotes = data.count(quote, start, pos)
    while quotes % 2:
        prev = data.rfind(b"\n", start, pos)
        if prev < 0:
            return -1
        quotes -= data.count(quote, prev, pos)
        pos = prev
    return pos


def split_block(block: Block, quote: bytes) -> tuple[Block, Block] | None:
    """Cut a block in two at a record boundary near its middle; None when it holds one record."""
    data, start, end = block.data, block.start, block.end
    middle = start + len(block) // 2
    cut = last_record_end(data, quote, start, middle)
    if cut < 0:
        # No boundary in the first half: take the first one after it.
        cut = first_record_end(data, quote, start, end)
    if cut < 0 or cut + 1 >= end:
        return None
    left = Block(data, start, cut + 1, block.first_line)
    right = Block(data, cut + 1, end, block.first_line + left.newline_count())
    return left, right


def record_lines(block: Block, quote: bytes) -> np.ndarray:
    """Physical line (1-based) where each non-empty record of the block starts.

    Empty records (blank lines) are skipped, as the CSV parser skips them.
    """
    data = np.frombuffer(block.data, dtype=np.uint8)[block.start : block.end]
    newlines = np.flatnonzero(data == ord("\n"))
    boundaries = newlines
    quotes = np.flatnonzero(data == quote[0])
    if len(quotes):
        boundaries = newlines[(np.searchsorted(quotes, newlines) & 1) == 0]
    ends = boundaries
    if len(data) and (not len(boundaries) or boundaries[-1] != len(data) - 1):
        ends = np.append(boundaries, len(data))
    starts = np.concatenate(([0], boundaries + 1))[: len(ends)]
    lengths = ends - starts
    first_byte = data[np.minimum(starts, max(len(data) - 1, 0))] if len(data) else starts
    non_empty = (lengths > 1) | ((lengths == 1) & (first_byte != ord("\r")))
    return block.first_line + np.searchsorted(newlines, starts[non_empty])


def is_utf8(block: Block) -> bool:
    """True when the block is valid UTF-8 (checked by Arrow, without copying the bytes)."""
    offsets = pa.array([0, len(block)], pa.int64()).buffers()[1]
    text = pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, block.buffer()])
    try:
        text.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def replace_undecodable(block: Block) -> tuple[Block, Block] | None:
    """Two valid UTF-8 copies of a block that is not valid UTF-8; None when it is.

    pyarrow decodes the text of a row with a wrong number of fields as UTF-8
    before it calls ``invalid_row_handler``, and fails the whole read when that
    text is not UTF-8; the copies can be parsed. In the first, each undecodable
    sequence is one U+FFFD (as ``bytes.decode(errors="replace")`` shows it); in
    the second, each undecodable byte is two U+FFFD. A field held undecodable
    bytes exactly where the two copies differ (a U+FFFD of the file itself is
    the same in both). Only bytes >= 0x80 change, so separators, quotes and
    newlines, hence records and line numbers, stay where they were.
    """
    if is_utf8(block):
        return None
    raw = block.tobytes()
    replaced = raw.decode("utf-8", "replace").encode("utf-8")
    doubled = _ESCAPED_BYTE.sub("\ufffd\ufffd", raw.decode("utf-8", "surrogateescape")).encode("utf-8")
    return (
        Block(replaced, 0, len(replaced), block.first_line),
        Block(doubled, 0, len(doubled), block.first_line),
    )


def read_exactly(stream: io.BufferedIOBase, size: int) -> bytes:
    """Read up to ``size`` bytes, looping over short reads (compressed streams)."""
    parts = []
    remaining = size
    while remaining > 0:
        data = stream.read(remaining)
        if not data:
            break
        parts.append(data)
        remaining -= len(data)
    return b"".join(parts)
