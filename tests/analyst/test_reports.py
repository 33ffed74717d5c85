"""The sales report: data sheets, a chart sheet with native Excel charts, the same charts as PNG."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import matplotlib.image
import openpyxl
import pandas as pd
import pyarrow as pa
import pytest
from openpyxl.chart import BarChart, LineChart

from dw_analytics.extract.queryset import read_queryset
from dw_analytics.load.excel import write_excel
from dw_analytics.load.exceptions import LoadValidationError
from dw_analytics.reports import CHART_SHEET, monthly_totals, sales_report
from dw_analytics.warehouse.models import SalesByCategory, SalesByCategoryMonth
from tests.analyst.conftest import sql_cents

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MONEY = pd.ArrowDtype(pa.decimal128(18, 2))


def money(*values: str) -> pd.Series:
    return pd.Series([Decimal(v) for v in values], dtype=MONEY)


@pytest.fixture
def by_category() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "categoria": ["Livros", "Moda", "Pet Shop"],
            "total_vendas": [3, 2, 1],
            "receita": money("100.10", "50.05", "10.00"),
            "lucro": money("40.00", "20.02", "1.00"),
        }
    )


@pytest.fixture
def monthly() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "month_key": [202601, 202601, 202602],
            "categoria": ["Livros", "Moda", "Livros"],
            "total_vendas": [2, 2, 1],
            "quantidade": [3, 2, 1],
            "receita": money("60.10", "50.05", "40.00"),
            "lucro": money("30.00", "20.02", "10.00"),
        }
    )


def test_monthly_totals_sum_the_categories_of_each_month_exactly(monthly):
    expected = pd.DataFrame(
        {
            "mes": ["2026-01", "2026-02"],
            "month_key": [202601, 202602],
            "total_vendas": [4, 1],
            "quantidade": [5, 1],
            "receita": pd.Series([Decimal("110.15"), Decimal("40.00")], dtype=pd.ArrowDtype(pa.decimal128(38, 2))),
            "lucro": pd.Series([Decimal("50.02"), Decimal("10.00")], dtype=pd.ArrowDtype(pa.decimal128(38, 2))),
        }
    )
    pd.testing.assert_frame_equal(monthly_totals(monthly), expected, check_dtype=False)
    assert monthly_totals(monthly)["receita"].dtype.pyarrow_dtype == pa.decimal128(38, 2)


def test_the_report_has_data_sheets_a_chart_sheet_with_two_native_charts_and_png_files(
    output_dir, by_category, monthly
):
    result = sales_report("reports/2026-12-04.xlsx", by_category=by_category, monthly=monthly)

    assert result.target == str(output_dir / "reports" / "2026-12-04.xlsx")
    assert result.sheets == {"Vendas por categoria": 3, "Vendas por mês": 3, "Tendência mensal": 2}
    assert (result.chart_sheet, result.n_charts) == (CHART_SHEET, 2)
    workbook = openpyxl.load_workbook(result.target)
    assert workbook.sheetnames == ["Vendas por categoria", "Vendas por mês", "Tendência mensal", CHART_SHEET]
    assert workbook.active.title == CHART_SHEET
    bar, line = workbook[CHART_SHEET]._charts
    assert isinstance(bar, BarChart) and bar.barDir == "bar"
    assert isinstance(line, LineChart)
    # Each series reads the data sheets' cells: name, categories and values.
    assert [s.tx.strRef.f for s in bar.series] == ["'Vendas por categoria'!$C$1", "'Vendas por categoria'!$D$1"]
    assert [s.val.numRef.f for s in bar.series] == [
        "'Vendas por categoria'!$C$2:$C$4",
        "'Vendas por categoria'!$D$2:$D$4",
    ]
    assert bar.series[0].cat.strRef.f == "'Vendas por categoria'!$A$2:$A$4"
    assert [s.val.numRef.f for s in line.series] == ["'Tendência mensal'!$E$2:$E$3", "'Tendência mensal'!$F$2:$F$3"]
    assert line.series[0].cat.strRef.f == "'Tendência mensal'!$A$2:$A$3"
    trend = workbook["Tendência mensal"]
    assert [[c.value for c in row] for row in trend.iter_rows(min_row=1, max_row=3)] == [
        ["mes", "month_key", "total_vendas", "quantidade", "receita", "lucro"],
        ["2026-01", 202601, 4, 5, 110.15, 50.02],
        ["2026-02", 202602, 1, 1, 40.0, 10.0],
    ]

    assert [p.rsplit("/", 1)[1] for p in result.png_files] == [
        "2026-12-04_vendas_por_categoria.png",
        "2026-12-04_tendencia_mensal.png",
    ]
    for png in result.png_files:
        with open(png, "rb") as handle:
            assert handle.read(8) == PNG_SIGNATURE
        height, width, _channels = matplotlib.image.imread(png).shape
        assert (width, height) == (990, 495)  # 9 x 4.5 inches at 110 dpi


def test_empty_data_gives_a_valid_workbook_without_charts(output_dir, by_category, monthly):
    result = sales_report("reports/empty.xlsx", by_category=by_category.iloc[:0], monthly=monthly.iloc[:0], png=False)
    assert (result.n_charts, result.png_files) == (0, [])
    sheet = openpyxl.load_workbook(result.target)[CHART_SHEET]
    assert sheet._charts == []
    assert sheet["B2"].value == "Vendas: receita e lucro por categoria: sem dados"


def test_missing_columns_are_refused_before_anything_is_written(output_dir, by_category, monthly):
    with pytest.raises(LoadValidationError, match=r"monthly lacks column\(s\) \['month_key'\]"):
        sales_report("reports/x.xlsx", by_category=by_category, monthly=monthly.drop(columns="month_key"))
    assert not (output_dir / "reports").exists()


def test_write_excel_hands_the_workbook_and_written_sheet_names_to_on_workbook(output_dir):
    seen = {}

    def add_note(workbook, sheets):
        seen.update(sheets)
        workbook.add_worksheet("Nota").write_string(0, 0, "ok")

    write_excel({"Vendas: 2026": pd.DataFrame({"a": [1]})}, "hook.xlsx", on_workbook=add_note)
    assert seen == {"Vendas: 2026": ["Vendas_ 2026"]}
    assert openpyxl.load_workbook(output_dir / "hook.xlsx")["Nota"]["A1"].value == "ok"


def test_the_report_from_the_nightly_tables_charts_every_category_and_month(nightly, output_dir):
    # The frames nightly.publish() reads, passed as the lead's call will pass them.
    by_category = read_queryset(
        SalesByCategory.objects.values("categoria", "total_vendas", "receita", "valor_medio", "lucro", "margem")
    )
    monthly = read_queryset(
        SalesByCategoryMonth.objects.order_by("month_key", "categoria").values(
            "month_key", "categoria", "total_vendas", "quantidade", "receita", "lucro"
        )
    )
    result = sales_report("reports/2026-06-30.xlsx", by_category=by_category, monthly=monthly)
    workbook = openpyxl.load_workbook(result.target)
    bar, line = workbook[CHART_SHEET]._charts
    n_categories = SalesByCategory.objects.count()
    n_months = SalesByCategoryMonth.objects.values("month_key").distinct().count()
    assert bar.series[0].val.numRef.f == f"'Vendas por categoria'!$C$2:$C${n_categories + 1}"
    assert bar.series[1].val.numRef.f == f"'Vendas por categoria'!$E$2:$E${n_categories + 1}"
    assert line.series[0].val.numRef.f == f"'Tendência mensal'!$E$2:$E${n_months + 1}"
    receita = [
        row[0] for row in workbook["Tendência mensal"].iter_rows(min_row=2, min_col=5, max_col=5, values_only=True)
    ]
    assert round(sum(receita), 2) == float(sql_cents(SalesByCategoryMonth.objects, "receita"))
    assert [Path(p).name for p in result.png_files] == [
        "2026-06-30_vendas_por_categoria.png",
        "2026-06-30_tendencia_mensal.png",
    ]
