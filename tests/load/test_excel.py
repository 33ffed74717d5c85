"""write_excel produces formatted, injection-safe, correctly split workbooks."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pytest

from dw_analytics.load import excel
from dw_analytics.load.base import LoadResult
from dw_analytics.load.excel import (
    DATE_FORMAT,
    DATETIME_FORMAT,
    MONEY_FORMAT,
    PERCENT_FORMAT,
    sanitize_sheet_name,
    write_excel,
)
from dw_analytics.load.exceptions import LoadValidationError, OutputPathError

MONEY = pd.ArrowDtype(pa.decimal128(18, 2))
RISKY = ["=1+1", "+55 11 9999", "-5", "@SUM(A1)", "\tcmd", "\rx", "\nx"]


def vendas() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "categoria": ["Bebidas", "Limpeza", None],
            "total": pd.array([Decimal("1234.56"), Decimal("12345678901.99"), None], dtype=MONEY),
            "margem_bruta": [0.25, 0.125, None],
            "desconto": [0.1, 0.2, 0.3],
            "data": [dt.date(2026, 1, 31), None, dt.date(2026, 2, 1)],
            "criado_em": pd.to_datetime(
                ["2026-01-01 03:15:00", "2026-07-15 12:00:00", None], format="ISO8601"
            ).tz_localize("UTC"),
            "quantidade": [1, 20, 300],
            "ativo": [True, False, True],
        }
    )


def ooxml_text(value: str) -> str:
    """Undo the _xHHHH_ escape OOXML uses for control characters (openpyxl keeps it)."""
    return re.sub(r"_x([0-9A-F]{4})_", lambda m: chr(int(m.group(1), 16)), value)


def load(path: str | Path) -> openpyxl.Workbook:
    return openpyxl.load_workbook(path)


def cells(ws, row: int) -> list:
    return [c.value for c in ws[row]]


def test_each_sheet_is_a_formatted_table_with_a_frozen_header(output_dir):
    result = write_excel({"Vendas": vendas()}, "relatorio.xlsx")

    assert isinstance(result, LoadResult)
    assert (result.n_inserted, result.sheets, result.streaming) == (3, {"Vendas": 3}, False)
    ws = load(result.target)["Vendas"]
    assert ws.freeze_panes == "A2"
    assert list(ws.tables) == ["tbl_Vendas"]
    assert ws.tables["tbl_Vendas"].ref == "A1:H4"
    assert ws.tables["tbl_Vendas"].tableStyleInfo.name == "TableStyleMedium2"
    header = ws[1]
    assert [c.value for c in header] == list(vendas().columns)
    assert all(c.font.b for c in header)


def test_values_and_number_formats_per_column_kind(output_dir):
    ws = load(write_excel({"Vendas": vendas()}, "relatorio.xlsx").target)["Vendas"]

    row2, row3 = ws[2], ws[3]
    assert cells(ws, 2) == [
        "Bebidas",
        1234.56,
        0.25,
        0.1,
        dt.datetime(2026, 1, 31),
        dt.datetime(2026, 1, 1, 0, 15),  # 03:15 UTC is 00:15 in São Paulo
        1,
        True,
    ]
    assert cells(ws, 3)[1] == 12345678901.99
    assert round(cells(ws, 3)[1] * 100) == 1234567890199  # the cents survive the double
    assert [c.number_format for c in row2] == [
        "General",
        MONEY_FORMAT,
        PERCENT_FORMAT,  # "margem" name heuristic
        "General",
        DATE_FORMAT,
        DATETIME_FORMAT,
        "General",
        "General",
    ]
    assert row2[1].data_type == "n" and row2[4].is_date and row2[5].is_date
    assert row3[4].value is None and ws["A4"].value is None  # missing values stay empty
    assert MONEY_FORMAT == '"R$ "#,##0.00'


def test_percent_cols_overrides_the_name_heuristic(output_dir):
    path = write_excel({"Vendas": vendas()}, "r.xlsx", percent_cols=["desconto"]).target
    row2 = load(path)["Vendas"][2]
    assert (row2[2].number_format, row2[3].number_format) == ("General", PERCENT_FORMAT)


def test_number_formats_override_any_default(output_dir):
    path = write_excel({"Vendas": vendas()}, "r.xlsx", number_formats={"quantidade": "#,##0"}).target
    assert load(path)["Vendas"]["G2"].number_format == "#,##0"


def test_column_widths_follow_the_data_and_the_header(output_dir):
    df = pd.DataFrame({"id": [1, 2], "descricao": ["x" * 40, "curta"], "nome_muito_comprido": ["a", "b"]})
    ws = load(write_excel({"S": df}, "w.xlsx").target)["S"]
    widths = {col: ws.column_dimensions[col].width for col in "ABC"}
    assert widths["A"] < widths["C"] < widths["B"]
    assert widths["B"] >= 40
    assert widths["C"] >= len("nome_muito_comprido")


@pytest.mark.parametrize("streaming", [False, True])
def test_text_that_looks_like_a_formula_stays_text(output_dir, streaming):
    df = pd.DataFrame({"texto": [*RISKY, "normal", "a=b"]})
    result = write_excel({"S": df}, "inj.xlsx", streaming=streaming)

    assert result.n_escaped == len(RISKY)
    ws = load(result.target)["S"]
    column = [ws.cell(row=r, column=1) for r in range(2, len(df) + 2)]
    assert [ooxml_text(c.value) for c in column] == df["texto"].tolist()
    assert {c.data_type for c in column} == {"s"}  # never "f" (formula)
    assert [c.quotePrefix for c in column] == [True] * len(RISKY) + [False, False]


def test_a_sheet_over_the_row_limit_is_split_into_numbered_sheets(output_dir, monkeypatch):
    monkeypatch.setattr(excel, "EXCEL_MAX_ROWS", 4)  # header + 3 data rows per sheet
    monkeypatch.setattr(excel, "CONVERT_ROWS", 2)  # conversion slices straddle the sheets
    df = pd.DataFrame({"id": range(1, 8), "total": pd.array([Decimal(i) for i in range(1, 8)], dtype=MONEY)})
    result = write_excel({"Vendas": df}, "split.xlsx")

    assert result.sheets == {"Vendas (1)": 3, "Vendas (2)": 3, "Vendas (3)": 1}
    wb = load(result.target)
    assert wb.sheetnames == ["Vendas (1)", "Vendas (2)", "Vendas (3)"]
    ids = [row[0] for ws in wb for row in ws.iter_rows(min_row=2, values_only=True)]
    assert ids == list(range(1, 8))
    assert [ws.freeze_panes for ws in wb] == ["A2"] * 3
    assert [list(ws.tables) for ws in wb] == [["tbl_Vendas_1"], ["tbl_Vendas_2"], ["tbl_Vendas_3"]]
    assert wb["Vendas (3)"]["B2"].number_format == MONEY_FORMAT


def test_a_stream_of_chunks_is_split_as_it_goes(output_dir, monkeypatch):
    monkeypatch.setattr(excel, "EXCEL_MAX_ROWS", 4)
    chunks = (pd.DataFrame({"id": range(k * 2, k * 2 + 2)}) for k in range(4))
    result = write_excel({"Vendas": chunks}, "chunks.xlsx")

    assert result.streaming is True
    assert result.sheets == {"Vendas": 3, "Vendas (2)": 3, "Vendas (3)": 2}
    wb = load(result.target)
    ids = [row[0] for ws in wb for row in ws.iter_rows(min_row=2, values_only=True)]
    assert ids == list(range(8))


def test_sheet_names_are_sanitized_and_unique():
    assert sanitize_sheet_name("Vendas: 2026/01 [final]?*") == "Vendas_ 2026_01 _final___"
    assert sanitize_sheet_name("x" * 40) == "x" * 31
    assert sanitize_sheet_name("'quoted'") == "quoted"
    assert sanitize_sheet_name("history") == "History_"
    assert sanitize_sheet_name("") == "Sheet"
    assert sanitize_sheet_name("VENDAS", ["vendas"]) == "VENDAS (2)"
    assert sanitize_sheet_name("y" * 40, ["y" * 31]) == "y" * 27 + " (2)"
    assert sanitize_sheet_name("Vendas", suffix=" (12)") == "Vendas (12)"


def test_workbook_sheet_names_are_sanitized(output_dir):
    df = pd.DataFrame({"a": [1]})
    result = write_excel({"a/b": df, "A_B": df, "Relatório de vendas por categoria 2026": df}, "n.xlsx")
    assert load(result.target).sheetnames == ["a_b", "A_B (2)", "Relatório de vendas por categor"]


def test_large_sheets_stream_with_an_autofilter_instead_of_a_table(output_dir):
    result = write_excel({"Vendas": vendas()}, "big.xlsx", streaming_threshold=2)

    assert result.streaming is True
    ws = load(result.target)["Vendas"]
    assert not ws.tables
    assert ws.auto_filter.ref == "A1:H4"
    assert ws.freeze_panes == "A2"
    assert all(c.font.b for c in ws[1])
    assert [c.number_format for c in ws[2]][1:3] == [MONEY_FORMAT, PERCENT_FORMAT]
    assert cells(ws, 2)[1] == 1234.56


def test_an_empty_frame_gives_a_header_only_table(output_dir):
    ws = load(write_excel({"Vazia": vendas().head(0)}, "e.xlsx").target)["Vazia"]
    assert cells(ws, 1) == list(vendas().columns)
    assert ws.tables["tbl_Vazia"].ref == "A1:H2"


def test_text_longer_than_an_excel_cell_is_refused(output_dir):
    df = pd.DataFrame({"obs": ["ok", "x" * 32_768]})
    with pytest.raises(LoadValidationError, match=r"column 'obs', row 1: text of 32768"):
        write_excel({"S": df}, "long.xlsx")
    assert not (output_dir / "long.xlsx").exists()


def test_a_failure_keeps_the_previous_workbook_and_leaves_no_temporary(output_dir):
    write_excel({"Vendas": vendas()}, "r.xlsx")

    def broken():
        yield vendas()
        raise RuntimeError("extract died")

    with pytest.raises(RuntimeError, match="extract died"):
        write_excel({"Vendas": broken()}, "r.xlsx")
    assert sorted(p.name for p in output_dir.iterdir()) == ["r.xlsx"]
    assert cells(load(output_dir / "r.xlsx")["Vendas"], 2)[0] == "Bebidas"


def test_bad_arguments_are_refused(output_dir):
    with pytest.raises(OutputPathError):
        write_excel({"S": vendas()}, "../r.xlsx")
    with pytest.raises(LoadValidationError, match=r"must end in \.xlsx"):
        write_excel({"S": vendas()}, "r.csv")
    with pytest.raises(LoadValidationError, match="non-empty mapping"):
        write_excel({}, "r.xlsx")


def test_duplicate_and_non_text_headers_become_unique_table_headers(output_dir):
    df = pd.DataFrame(np.arange(8).reshape(2, 4), columns=["Total", "total", 2026, "Total"])
    ws = load(write_excel({"S": df}, "h.xlsx").target)["S"]
    assert cells(ws, 1) == ["Total", "total (2)", "2026", "Total (3)"]
    assert cells(ws, 3) == [4, 5, 6, 7]
