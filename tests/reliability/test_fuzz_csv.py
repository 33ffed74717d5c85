"""Hypothesis fuzzing of read_csv_chunks on generated CSV text.

Whatever the bytes, the reader raises nothing but the project's own errors
(:class:`~dw_analytics.core.exceptions.DWError` subclasses) and never loses a
row silently: rows yielded + rows quarantined == rows read == the records a
CSV parser (Python's ``csv`` module) finds in the text.
"""

from __future__ import annotations

import csv
import io
import os

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import dw_analytics.extract._csv_convert as convert_module
import dw_analytics.extract.csv as csv_module
from dw_analytics.core.exceptions import DWError
from dw_analytics.extract.csv import CsvChunks

HEADER = "id,valor,data\n"
OPTIONS = {
    "inferred": {},
    "typed": {"dtypes": {"id": "int64"}, "decimals": {"valor": (14, 2)}, "dates": ["data"]},
    "text": {"dtypes": {"id": "string", "valor": "string", "data": "string"}},
}
# FUZZ_EXAMPLES=2000 for a longer hunt. Characters that matter to a CSV parser, plus a few that matter to decoders.
ALPHABET = st.sampled_from(list('1234567890-.,;"\n ab\té\x00') + ["\r\n", "2026-01-31", "9.99"])
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", 60)),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def records_in(text: str) -> int:
    """Data records Python's csv module finds (blank lines are not records)."""
    return sum(1 for record in csv.reader(io.StringIO(text, newline="")) if record) - 1


def read_everything(path, options, encoding="utf-8"):
    """Read the file; return (reader, rows yielded)."""
    reader = CsvChunks(path, chunksize=3, block_size=1024, encoding=encoding, **options)
    frames = list(reader)
    return reader, sum(len(f) for f in frames)


def check(tmp_path, monkeypatch, data: bytes, option: str, encoding: str = "utf-8") -> CsvChunks | None:
    # A tiny precise-path threshold exercises bisection on small inputs.
    monkeypatch.setattr(csv_module, "_PRECISE_PATH_BYTES", 64)
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    try:
        reader, n_yielded = read_everything(path, OPTIONS[option], encoding)
    except DWError:
        return None  # a clear, project-specific error is an acceptable outcome
    assert n_yielded == reader.n_yielded
    assert reader.n_yielded + reader.n_errors == reader.n_rows
    assert len(reader.quarantine) == reader.n_errors
    assert reader.quarantine["line"].is_monotonic_increasing
    return reader


@FUZZ
@given(body=st.lists(ALPHABET, max_size=120).map("".join), option=st.sampled_from(sorted(OPTIONS)))
@example(body='1,"2.00,2026-01-01\n2,3.00,2026-01-02\n', option="typed")  # unclosed quote
@example(body="1,\x00,2026-01-01\n", option="text")  # NUL byte
def test_generated_csv_text_never_crashes_and_every_record_is_counted(tmp_path, monkeypatch, body, option):
    text = HEADER + body
    reader = check(tmp_path, monkeypatch, text.encode(), option)
    if reader is not None and "\r" not in text.replace("\r\n", ""):
        assert reader.n_rows == records_in(text)


@FUZZ
@given(body=st.binary(max_size=200), option=st.sampled_from(sorted(OPTIONS)))
def test_arbitrary_bytes_read_as_latin1_never_crash_the_reader(tmp_path, monkeypatch, body, option):
    # latin-1 decodes every byte: the parser itself meets every byte value.
    check(tmp_path, monkeypatch, HEADER.encode() + body, option, encoding="latin-1")


def test_a_ragged_row_with_invalid_utf8_is_quarantined(tmp_path):
    path = tmp_path / "ragged_latin1.csv"
    path.write_bytes(b"id,valor,data\n1,2.00,2026-01-01\nJo\xe3o\n")
    reader, n_yielded = read_everything(path, {})
    assert (reader.n_rows, n_yielded, reader.n_errors) == (2, 1, 1)
    assert reader.quarantine["line"].tolist() == [3]


def outcome(path, option):
    """Everything a read shows a user: the rows, the quarantine, or the error."""
    try:
        reader, _ = read_everything(path, OPTIONS[option])
    except DWError as exc:
        return type(exc).__name__, str(exc)
    frames = [frame.to_dict("list") for frame in reader]
    return frames, reader.quarantine.to_dict("list"), reader.n_rows


MONEY = st.sampled_from(["9.99", "-0.5", "1.230", "1.235", " 2.00", "1e2", "12345678901234.5", "", "x", "NA", ".5"])


@FUZZ
@given(
    rows=st.lists(st.tuples(st.integers(0, 99), MONEY, st.sampled_from(["2026-01-31", ""])), max_size=60),
    noise=st.lists(ALPHABET, max_size=20).map("".join),
)
def test_the_plain_decimal_kernel_changes_nothing_a_user_sees(tmp_path, monkeypatch, rows, noise):
    monkeypatch.setattr(csv_module, "_PRECISE_PATH_BYTES", 64)
    path = tmp_path / "money.csv"
    path.write_text(HEADER + "".join(f"{i},{money},{day}\n" for i, money, day in rows) + noise, encoding="utf-8")
    with_kernel = outcome(path, "typed")
    monkeypatch.setattr(convert_module, "_parse_decimals", None)
    assert outcome(path, "typed") == with_kernel
