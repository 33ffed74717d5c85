"""read_excel: a workbook written with openpyxl, read back typed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pytest
from pandas.testing import assert_frame_equal

from dw_analytics.extract.excel import read_excel
from dw_analytics.extract.exceptions import (
    EmptySourceError,
    ExtractError,
    SourceNotFoundError,
    UnsupportedSourceError,
)

STR = pd.StringDtype(storage="pyarrow", na_value=np.nan)
SP = "America/Sao_Paulo"


@pytest.fixture
def workbook(tmp_path):
    path = tmp_path / "vendas.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Pedidos"
    sheet.append(["id", "total", "quando", "ativo", "cliente", "obs", "misto"])
    sheet.append([1, 59.70, dt.datetime(2024, 1, 31, 20, 30), True, "Ana", None, 1])
    sheet.append([2, 0.10, None, None, "Bia", None, "x"])
    sheet.append([3, 999999999999.99, dt.datetime(2024, 3, 5, 9, 0, 0, 500000), False, None, None, 2.5])
    other = book.create_sheet("Datas")
    other.append(["dia", "n"])
    other.append([dt.date(2024, 2, 29), 10])
    other.append([dt.date(2024, 3, 1), None])
    book.create_sheet("Vazia")
    book.save(path)
    return path


def expected_pedidos(total_dtype=None):
    total_dtype = np.dtype("float64") if total_dtype is None else total_dtype
    totals = [59.70, 0.10, 999999999999.99]
    if total_dtype != np.dtype("float64"):
        totals = [Decimal("59.70"), Decimal("0.10"), Decimal("999999999999.99")]
    return pd.DataFrame(
        {
            "id": pd.array([1, 2, 3], dtype="Int64"),
            "total": pd.array(totals, dtype=total_dtype),
            "quando": pd.Series(pd.to_datetime(["2024-01-31 20:30", None, "2024-03-05 09:00:00.5"], format="ISO8601"))
            .dt.tz_localize(SP)
            .astype(pd.DatetimeTZDtype(unit="us", tz=SP)),
            "ativo": pd.array([True, None, False], dtype="boolean"),
            "cliente": pd.array(["Ana", "Bia", None], dtype=STR),
            "obs": pd.array([None, None, None], dtype=STR),
            "misto": pd.Series([1, "x", 2.5], dtype=object),
        }
    )


@pytest.mark.parametrize("engine", ["calamine", "openpyxl"])
def test_first_sheet_round_trips_with_types_from_the_values(workbook, engine):
    df = read_excel(workbook, engine=engine)
    expected = expected_pedidos()
    # calamine hands every number back as a float; openpyxl keeps ints as ints.
    if engine == "calamine":
        expected["misto"] = pd.Series([1.0, "x", 2.5], dtype=object)
    assert_frame_equal(df, expected)


def test_money_columns_can_be_read_as_exact_decimals(workbook):
    df = read_excel(workbook, "Pedidos", decimals={"total": (14, 2)})
    assert_frame_equal(df, expected_pedidos(pd.ArrowDtype(pa.decimal128(14, 2))))
    assert df["total"].sum() == Decimal("1000000000059.79")


def test_sheet_by_name_and_by_index_are_the_same(workbook):
    by_name = read_excel(workbook, "Datas")
    assert_frame_equal(by_name, read_excel(workbook, 1))
    assert_frame_equal(by_name, read_excel(workbook, -2))
    assert_frame_equal(
        by_name,
        pd.DataFrame(
            {
                "dia": pd.array(
                    [dt.date(2024, 2, 29), dt.date(2024, 3, 1)],
                    dtype=pd.ArrowDtype(pa.date32()),
                ),
                "n": pd.array([10, None], dtype="Int64"),
            }
        ),
    )


def test_missing_sheet_lists_the_sheets(workbook):
    with pytest.raises(SourceNotFoundError, match=r"\['Pedidos', 'Datas', 'Vazia'\]") as info:
        read_excel(workbook, "Clientes")
    assert info.value.sheets == ["Pedidos", "Datas", "Vazia"]
    with pytest.raises(SourceNotFoundError, match="Sheet 7 not found"):
        read_excel(workbook, 7)


def test_missing_file_is_a_source_not_found_error(tmp_path):
    missing = tmp_path / "nope.xlsx"
    with pytest.raises(SourceNotFoundError, match="nope.xlsx") as info:
        read_excel(missing)
    assert isinstance(info.value, FileNotFoundError)
    assert info.value.file == str(missing)


def test_empty_sheet_and_non_workbook_are_clear_errors(workbook, tmp_path):
    with pytest.raises(EmptySourceError, match="no header"):
        read_excel(workbook, "Vazia")
    text = tmp_path / "not.xlsx"
    text.write_text("id,total\n1,2\n")
    with pytest.raises(UnsupportedSourceError, match="not.xlsx"):
        read_excel(text)


def test_decimals_for_an_unknown_column_or_text_column_is_an_error(workbook):
    with pytest.raises(ExtractError, match="does not have"):
        read_excel(workbook, decimals={"preco": 2})
    with pytest.raises(ExtractError, match="cliente"):
        read_excel(workbook, decimals={"cliente": 2})
