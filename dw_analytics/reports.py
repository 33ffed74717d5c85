"""The nightly sales report: an Excel workbook with native charts, and the same charts as PNG.

:func:`sales_report` writes, under ``DW_OUTPUT_DIR``:

* ``reports/<date>.xlsx`` through :func:`dw_analytics.load.excel.write_excel`
  (formatted tables, money and percent formats, atomic publish) with the
  sheets ``Vendas por categoria``, ``Vendas por mês`` and ``Tendência mensal``
  (the monthly totals the trend chart plots), plus a ``Gráficos`` sheet holding
  two native Excel charts that read those sheets' cells (a bar chart of revenue
  and profit by category, a line chart of monthly revenue and profit): they
  stay live if an analyst edits or filters the data;
* ``reports/<date>_vendas_por_categoria.png`` and
  ``reports/<date>_tendencia_mensal.png``: the same charts drawn with
  matplotlib (Agg backend, no display needed) for e-mails and wikis.

Monthly totals are summed exactly (``transforms.rollup`` on decimals); only
the PNG drawing converts money to float, which a picture can afford.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import xlsxwriter

from dw_analytics.load.excel import MONEY_FORMAT, ExcelWriteResult, write_excel
from dw_analytics.load.exceptions import LoadValidationError
from dw_analytics.load.paths import atomic_output, resolve_output_path
from transforms.rollup import rollup

__all__ = ["SalesReportResult", "monthly_totals", "sales_report"]

BY_CATEGORY_SHEET = "Vendas por categoria"
MONTHLY_SHEET = "Vendas por mês"
TREND_SHEET = "Tendência mensal"
CHART_SHEET = "Gráficos"
CATEGORY_CHART_PNG = "vendas_por_categoria"
TREND_CHART_PNG = "tendencia_mensal"
REVENUE_COLOR = "#1F4E78"  # the header blue of write_excel
PROFIT_COLOR = "#70AD47"
CHART_SIZE = {"width": 900, "height": 420}
PNG_DPI = 110
_AXIS_MONEY = MONEY_FORMAT.replace(".00", "")  # the workbook's money format, whole reais


@dataclass
class SalesReportResult(ExcelWriteResult):
    """What :func:`sales_report` wrote: the workbook (an :class:`ExcelWriteResult`) and charts.

    Attributes:
        chart_sheet: name of the sheet holding the native Excel charts.
        n_charts: native charts in it.
        png_files: absolute paths of the PNG charts.

    Example:
        >>> SalesReportResult(target="/out/r.xlsx", chart_sheet="Gráficos").chart_sheet
        'Gráficos'
    """

    chart_sheet: str = ""
    n_charts: int = 0
    png_files: list[str] = field(default_factory=list)


def monthly_totals(monthly: pd.DataFrame) -> pd.DataFrame:
    """Per-month totals over categories, with a ``mes`` label (``2026-01``), exact sums.

    Args:
        monthly: ``month_key`` (yyyymm) and any of ``total_vendas``,
            ``quantidade``, ``receita``, ``lucro`` (one row per month and category).

    Returns:
        ``mes`` str, ``month_key`` int64 and the summed measures, by month.

    Example:
        >>> df = pd.DataFrame({"month_key": [202601, 202601, 202602], "total_vendas": [1, 2, 3]})
        >>> monthly_totals(df).to_dict("list")
        {'mes': ['2026-01', '2026-02'], 'month_key': [202601, 202602], 'total_vendas': [3, 3]}
    """
    if "month_key" not in monthly.columns:
        raise LoadValidationError(
            f"the monthly frame needs a month_key column (yyyymm); it has {list(monthly.columns)}",
            column="month_key",
        )
    measures = [c for c in ("total_vendas", "quantidade", "receita", "lucro") if c in monthly]
    totals = rollup(monthly, by="month_key", **{m: (m, "sum") for m in measures})
    keys = totals["month_key"].to_numpy(np.int64)
    label = pd.Series(keys // 100).astype(str) + "-" + pd.Series(keys % 100).astype(str).str.zfill(2)
    totals.insert(0, "mes", label.astype("str").to_numpy())
    return totals


def sales_report(
    path: str | os.PathLike[str],
    *,
    by_category: pd.DataFrame,
    monthly: pd.DataFrame,
    png: bool = True,
    title: str = "Vendas",
) -> SalesReportResult:
    """Write the sales workbook with a chart sheet, and the charts as PNG next to it.

    Args:
        path: workbook name under ``DW_OUTPUT_DIR`` (``reports/2026-12-04.xlsx``).
        by_category: one row per category: ``categoria``, ``receita``, optionally
            ``lucro`` and any other measures (shown in the table, not charted).
        monthly: one row per month and category: ``month_key`` (yyyymm),
            ``receita``, optionally ``lucro``, ``total_vendas``, ``quantidade``.
        png: also save the charts as PNG files.
        title: prefix of the chart titles.

    Returns:
        :class:`SalesReportResult`; ``target`` is the workbook.

    Raises:
        LoadValidationError: a required column is missing.
        LoadError: writing failed; no workbook is published.

    Example:
        >>> r = sales_report("reports/2026-12-04.xlsx", by_category=cats, monthly=months)  # doctest: +SKIP
        >>> r.chart_sheet, [Path(p).name for p in r.png_files]  # doctest: +SKIP
        ('Gráficos', ['2026-12-04_vendas_por_categoria.png', '2026-12-04_tendencia_mensal.png'])
    """
    _require(by_category, "by_category", ["categoria", "receita"])
    _require(monthly, "monthly", ["month_key", "receita"])
    trend = monthly_totals(monthly)
    charts_added: list[str] = []

    def add_chart_sheet(workbook: xlsxwriter.Workbook, sheets: Mapping[str, list[str]]) -> None:
        charts_added[:] = _add_excel_charts(workbook, sheets, by_category, trend, title)

    excel = write_excel(
        {BY_CATEGORY_SHEET: by_category, MONTHLY_SHEET: monthly, TREND_SHEET: trend},
        path,
        on_workbook=add_chart_sheet,
    )
    png_files = _save_png_charts(Path(excel.target), by_category, trend, title) if png else []
    return SalesReportResult(**vars(excel), chart_sheet=CHART_SHEET, n_charts=len(charts_added), png_files=png_files)


def _require(frame: pd.DataFrame, label: str, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise LoadValidationError(
            f"sales_report: {label} lacks column(s) {missing}; it has {list(frame.columns)}",
            column=missing[0],
        )


# -- native Excel charts ---------------------------------------------------------------------
def _add_excel_charts(
    workbook: xlsxwriter.Workbook,
    sheets: Mapping[str, list[str]],
    by_category: pd.DataFrame,
    trend: pd.DataFrame,
    title: str,
) -> list[str]:
    """Add the chart sheet; each chart's series point at the data sheets' cells."""
    chart_sheet = workbook.add_worksheet(CHART_SHEET)
    chart_sheet.hide_gridlines(2)
    added = []
    specs = [
        (
            "bar",
            sheets[BY_CATEGORY_SHEET][0],
            by_category,
            "categoria",
            f"{title}: receita e lucro por categoria",
        ),
        ("line", sheets[TREND_SHEET][0], trend, "mes", f"{title}: tendência mensal"),
    ]
    anchor_row = 1
    for chart_type, data_sheet, frame, label_column, chart_title in specs:
        if frame.empty:  # an empty range makes Excel report a damaged file
            chart_sheet.write_string(anchor_row, 1, f"{chart_title}: sem dados")
            anchor_row += 2
            continue
        chart = workbook.add_chart({"type": chart_type})
        last_row = len(frame)  # data rows are 1..n under the header
        label_col = frame.columns.get_loc(label_column)
        for measure, color in (("receita", REVENUE_COLOR), ("lucro", PROFIT_COLOR)):
            if measure not in frame.columns:
                continue
            col = frame.columns.get_loc(measure)
            series = {
                "name": [data_sheet, 0, col],
                "categories": [data_sheet, 1, label_col, last_row, label_col],
                "values": [data_sheet, 1, col, last_row, col],
            }
            if chart_type == "line":
                series["line"] = {"color": color, "width": 2.25}
                series["marker"] = {"type": "circle", "size": 4, "fill": {"color": color}}
            else:
                series["fill"] = {"color": color}
            chart.add_series(series)
        chart.set_title({"name": chart_title})
        value_axis = {"num_format": _AXIS_MONEY, "major_gridlines": {"visible": True}}
        if chart_type == "bar":  # horizontal bars: the values run along x
            chart.set_x_axis(value_axis)
            chart.set_y_axis({"reverse": True})  # first category on top, as in the table
        else:
            chart.set_y_axis(value_axis)
            chart.set_x_axis({"num_font": {"rotation": -45}})
        chart.set_legend({"position": "bottom"})
        chart.set_size(CHART_SIZE)
        chart_sheet.insert_chart(anchor_row, 1, chart)
        added.append(chart_title)
        anchor_row += 23  # the chart's height in rows, plus a gap
    chart_sheet.activate()  # the workbook opens on the charts
    return added


# -- PNG charts ------------------------------------------------------------------------------
def _save_png_charts(workbook_path: Path, by_category: pd.DataFrame, trend: pd.DataFrame, title: str) -> list[str]:
    stem = workbook_path.with_suffix("")
    files = []
    for suffix, draw in (
        (CATEGORY_CHART_PNG, lambda ax: _draw_categories(ax, by_category, title)),
        (TREND_CHART_PNG, lambda ax: _draw_trend(ax, trend, title)),
    ):
        target = resolve_output_path(f"{stem}_{suffix}.png")
        _save_figure(target, draw)
        files.append(str(target))
    return files


def _save_figure(target: Path, draw) -> None:
    # The object API with the Agg canvas: no pyplot global state, no display, thread-safe.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    draw(figure.add_subplot())
    with atomic_output(target) as tmp, open(tmp, "wb") as handle:
        figure.savefig(handle, format="png", dpi=PNG_DPI)


def _as_float(series: pd.Series) -> np.ndarray:
    """Money for drawing only: correctly rounded doubles (never written back)."""
    if isinstance(series.dtype, pd.ArrowDtype):
        return pa.array(series).cast(pa.float64()).to_numpy(zero_copy_only=False)
    return series.astype("float64").to_numpy()


def _money_axis(axis) -> None:
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: "R$ " + f"{v:,.0f}".replace(",", ".")))


def _draw_categories(ax, by_category: pd.DataFrame, title: str) -> None:
    names = by_category["categoria"].astype(str).to_numpy()
    positions = np.arange(len(names))
    measures = [m for m in ("receita", "lucro") if m in by_category.columns]
    height = 0.8 / max(len(measures), 1)
    for i, (measure, color) in enumerate(zip(measures, (REVENUE_COLOR, PROFIT_COLOR), strict=False)):
        ax.barh(
            positions + i * height,
            _as_float(by_category[measure]),
            height,
            label=measure,
            color=color,
        )
    ax.set_yticks(positions + height * (len(measures) - 1) / 2, names)
    ax.invert_yaxis()
    _money_axis(ax.xaxis)
    ax.set_title(f"{title}: receita e lucro por categoria")
    ax.grid(axis="x", alpha=0.3)
    if len(names):
        ax.legend(loc="lower right")


def _draw_trend(ax, trend: pd.DataFrame, title: str) -> None:
    months = trend["mes"].astype(str).to_numpy()
    for measure, color in (("receita", REVENUE_COLOR), ("lucro", PROFIT_COLOR)):
        if measure in trend.columns:
            ax.plot(
                months,
                _as_float(trend[measure]),
                marker="o",
                markersize=3,
                color=color,
                label=measure,
            )
    _money_axis(ax.yaxis)
    step = max(1, len(months) // 12)  # at most ~12 labels
    ax.set_xticks(np.arange(0, len(months), step), months[::step], rotation=45, ha="right")
    ax.set_title(f"{title}: tendência mensal")
    ax.grid(alpha=0.3)
    if len(months):
        ax.legend(loc="upper left")
