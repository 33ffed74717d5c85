"""The plain-decimal kernel: exact decimal128 from text, or a refusal Arrow then settles."""

from __future__ import annotations

import re
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

import dw_analytics.extract._csv_convert as convert_module
from dw_analytics.extract._csv_convert import decimals_from_text
from dw_analytics.extract.csv import read_csv_chunks

_PLAIN = re.compile(r"[+-]?(\d*)(?:\.(\d*))?")


def reference(text: str, precision: int, scale: int) -> Decimal | None:
    """What the kernel must return for one text, computed with Python's Decimal."""
    match = _PLAIN.fullmatch(text)
    if match is None or not (match[1] or match[2]):
        return None
    integer, places = match[1].lstrip("0"), (match[2] or "").rstrip("0")
    if len(places) > scale or len(integer) > precision - scale:
        return None
    return Decimal(text).quantize(Decimal(1).scaleb(-scale))


def convert(texts, precision=18, scale=2, decimal=".", lead=True):
    # The kernel reads the usual shape 8 bytes at a time, ending at the decimal mark, when
    # those 8 bytes lie inside the buffer: a leading "00000000" puts every text there.
    padding = ["00000000"] if lead else []
    array = pa.chunked_array([pa.array(padding + texts, pa.binary())])
    result = decimals_from_text(array, pa.decimal128(precision, scale), decimal)
    return None if result is None else result.to_pylist()[len(padding) :]


def test_the_kernel_is_built():
    # The Makefile builds it; without it the reader is exact but about a third slower.
    assert convert_module._parse_decimals is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1234.50", Decimal("1234.50")),
        ("-0.01", Decimal("-0.01")),
        ("+7", Decimal("7.00")),
        ("-.5", Decimal("-0.50")),
        ("5.", Decimal("5.00")),
        ("1.230", Decimal("1.23")),  # a trailing zero beyond the scale is not rounding
        ("0009999999999999999.99", Decimal("9999999999999999.99")),  # leading zeros are not digits of precision
        ("-9999999999999999.99", Decimal("-9999999999999999.99")),
    ],
)
def test_plain_texts_convert_exactly(text, expected):
    assert convert([text]) == [expected]


@pytest.mark.parametrize(
    "text",
    ["1.235", "99999999999999999.99", "1e3", " 5", "5 ", "-", ".", "", "+-5", "1.2.3", "1,5", "\x005", "٣"],
)
def test_anything_else_is_refused_for_arrow_to_decide(text):
    assert convert(["1.00", text]) is None


def test_nulls_offsets_and_several_chunks():
    sliced = pa.array([b"9.99", None, b"1,5", b"-2"], pa.binary()).slice(1)
    array = pa.chunked_array([sliced, pa.array([b"3"], pa.binary())])
    result = decimals_from_text(array, pa.decimal128(10, 1), ",")
    assert result.type == pa.decimal128(10, 1)
    assert result.to_pylist() == [None, Decimal("1.5"), Decimal("-2.0"), Decimal("3.0")]
    assert result.null_count == 1


def test_scale_zero_and_precision_equal_to_scale():
    assert convert(["12", "-0", "3.000"], precision=2, scale=0) == [Decimal(12), Decimal(0), Decimal(3)]
    assert convert(["123"], precision=2, scale=0) is None
    assert convert(["0.12", "-.05"], precision=2, scale=2) == [Decimal("0.12"), Decimal("-0.05")]
    assert convert(["1.00"], precision=2, scale=2) is None


def test_only_plain_decimal_columns_with_an_ascii_mark_are_read_as_text():
    def plan(target, **options):
        return convert_module.ColumnPlan("v", target, **options).reads_decimal_text

    assert plan(pa.decimal128(18, 2)) and plan(pa.decimal128(9, 0), decimal=",")
    assert not plan(pa.decimal128(19, 2))  # beyond int64: Arrow converts
    assert not plan(pa.decimal128(18, 2), thousands=".", decimal=",")  # separators are stripped first
    assert not plan(pa.decimal128(18, 2), decimal="\u066b")  # Arabic decimal separator: several bytes
    assert not plan(pa.float64())


def test_impossible_arguments_are_refused():
    with pytest.raises(ValueError, match="precision"):
        convert_module._parse_decimals(b"\0" * 8, b"", None, 0, 1, 19, 2, ord("."))
    with pytest.raises(ValueError, match="shorter"):
        convert_module._parse_decimals(b"\0" * 4, b"", None, 0, 1, 18, 2, ord("."))
    with pytest.raises(ValueError, match="outside"):
        convert_module._parse_decimals(pa.array([0, 9], pa.int32()).buffers()[1], b"12", None, 0, 1, 18, 2, 46)


@st.composite
def usual_shape_with_a_flaw(draw):
    """Digits, a mark, two places; sometimes one byte swapped for a near-digit (``/`` and ``:``
    border the digits in ASCII)."""
    text = f"{draw(st.sampled_from(['', '-']))}{draw(st.integers(0, 10**10))}.{draw(st.integers(0, 99)):02d}"
    if draw(st.booleans()):
        position = draw(st.integers(0, len(text) - 1))
        text = text[:position] + draw(st.sampled_from("/:a .0")) + text[position + 1 :]
    return text


TEXTS = st.one_of(
    usual_shape_with_a_flaw(),
    st.text(alphabet="0123456789.-+", max_size=24),
    st.builds(
        lambda sign, units, places: f"{sign}{units}.{places}",
        st.sampled_from(["", "-", "+"]),
        st.integers(0, 10**17).map(str),
        st.text(alphabet="0123456789", max_size=5),
    ),
)


@settings(max_examples=500, deadline=None)
@given(texts=st.lists(TEXTS, min_size=1, max_size=20), precision=st.integers(1, 18), data=st.data())
def test_every_text_converts_like_python_decimal_or_is_refused(texts, precision, data):
    scale = data.draw(st.integers(0, precision))
    expected = [reference(text, precision, scale) for text in texts]
    got = convert(texts, precision, scale, lead=data.draw(st.booleans()))
    if None in expected:
        assert got is None
        return
    assert got == expected
    # What the kernel takes, Arrow's own conversion takes with the same values.
    arrow = pc.cast(pa.array(texts), pa.decimal128(precision, scale)).to_pylist()
    assert arrow == expected


def test_a_file_whose_numbers_the_kernel_refuses_reads_the_same_through_arrow(tmp_path, monkeypatch):
    # Blanks and an exponent: Arrow reads them; the kernel hands every block to Arrow.
    path = tmp_path / "v.csv"
    path.write_text("id,total\n" + "".join(f"{i}, {i}.5 \n" for i in range(2000)) + "2000,1e2\n")
    with_kernel = read_csv_chunks(path, decimals={"total": 2}, block_size=1024)
    frames = list(with_kernel)
    assert with_kernel._text_decimals == frozenset()  # given up after the first block Arrow took
    monkeypatch.setattr(convert_module, "_parse_decimals", None)
    without = list(read_csv_chunks(path, decimals={"total": 2}, block_size=1024))
    got = [value for frame in frames for value in frame["total"]]
    assert got == [value for frame in without for value in frame["total"]]
    assert got[:2] == [Decimal("0.50"), Decimal("1.50")] and got[-1] == Decimal("100.00")


def test_a_decimal_comma_file_goes_through_the_kernel(tmp_path, monkeypatch):
    path = tmp_path / "vendas_br.csv"
    path.write_text("id;total\n1;1234,50\n2;-0,05\n3;\n4;7\n", encoding="utf-8")
    reader = read_csv_chunks(path, sep=";", decimal=",", decimals={"total": 2})
    frames = list(reader)
    assert reader._text_decimals == frozenset({"total"})  # every block was plain: never handed to Arrow
    got = frames[0]["total"].tolist()
    assert got[:2] + got[3:] == [Decimal("1234.50"), Decimal("-0.05"), Decimal("7.00")]
    assert pd.isna(got[2])
    monkeypatch.setattr(convert_module, "_parse_decimals", None)
    assert_frame_equal(list(read_csv_chunks(path, sep=";", decimal=",", decimals={"total": 2}))[0], frames[0])
