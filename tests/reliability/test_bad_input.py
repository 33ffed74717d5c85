"""Bad input: every file of ``cases/`` gives a clear error or quarantine rows, and counts reconcile.

For each file the rows it must yield, the quarantine rows (file, line,
column, value, reason) or the error are stated exactly; the good rows are then
loaded into ``sales.FonteExterna`` with ``write_model`` and
rows read == rows loaded + rows quarantined.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pandas.testing import assert_frame_equal

from dw_analytics.extract.csv import read_csv_chunks
from dw_analytics.extract.exceptions import EmptySourceError
from dw_analytics.load.exceptions import LoadValidationError
from dw_analytics.load.models import write_model
from dw_analytics.sales.models import Destino, FonteExterna, Pedido

CASES = Path(__file__).parent / "cases"
OPTIONS = {"decimals": {"valor": (14, 2)}, "dates": ["data"]}
BRAZILIAN = {
    "sep": ";",
    "decimal": ",",
    "thousands": ".",
    "decimals": {"valor": (14, 2)},
    "dates": {"data": "%d/%m/%Y"},
}
NOT_UTF8 = "invalid UTF-8 bytes; if the file is not UTF-8 pass encoding= (e.g. 'cp1252') or encoding='auto'"
NOT_A_DATE = "not an ISO 8601 date (YYYY-MM-DD or YYYY-MM-DD HH:MM:SS)"
NOT_A_DECIMAL = "not a decimal number (decimal mark '.')"
UNCLOSED_QUOTE = (
    "a quote opened in this row is never closed, so the lines after it, up to the end of the file "
    "or the next quote, were read into one field (expected 3 fields, found 2)"
)


def quarantine_frame(path: Path, rows) -> pd.DataFrame:
    frame = pd.DataFrame([(str(path), *row) for row in rows], columns=["file", "line", "column", "value", "reason"])
    return frame.astype({"file": "str", "line": "int64", "column": "str", "value": "str", "reason": "str"})


def read(path: Path, options=OPTIONS):
    reader = read_csv_chunks(path, **options)
    frames = list(reader)
    good = pd.concat(frames, ignore_index=True) if frames else None
    return reader, good


def load(good: pd.DataFrame | None) -> int:
    """Load the good rows into FonteExterna; return the rows the database now holds."""
    if good is not None:
        write_model(good, FonteExterna, mode="append")
    return FonteExterna.objects.count()


QUARANTINE_CASES = {
    "ragged_rows.csv": (
        ["R1", "R4"],
        [
            (3, np.nan, "R2,11.00", "expected 3 fields, found 2"),
            (4, np.nan, "R3,12.00,2026-01-03,extra", "expected 3 fields, found 4"),
        ],
    ),
    # RFC 4180: the open quote runs to the end of the file, so U3 and U4 are inside U2's
    # field. They are not lost: the quarantined value holds them, verbatim.
    "unclosed_quote.csv": (
        ["U1"],
        [(3, np.nan, 'U2,"11.00,2026-01-02\nU3,12.00,2026-01-03\nU4,13.00,2026-01-04', UNCLOSED_QUOTE)],
    ),
    "mixed_encodings.csv": (
        ["E1", "€3"],
        [(3, "id_externo", "Jo\ufffdo", NOT_UTF8), (5, "id_externo", "E\ufffd4", NOT_UTF8)],
    ),
    "bom.csv": (["B1", "B2"], []),
    "header_only.csv": ([], []),
    "wrong_decimal_separator.csv": (
        ["W1", "W4"],
        [(3, "valor", "10,50", NOT_A_DECIMAL), (4, "valor", "1.234.56", NOT_A_DECIMAL)],
    ),
    "out_of_range_dates.csv": (
        ["T1", "T5"],
        [
            (3, "data", "2026-02-30", NOT_A_DATE),
            (4, "data", "2026-13-01", NOT_A_DATE),
            (5, "data", "10000-01-01", NOT_A_DATE),
        ],
    ),
    "decimal_overflow.csv": (
        ["O1", "O5"],
        [
            (3, "valor", "123456789012345.67", "out of range for decimal(14, 2)"),
            (4, "valor", "1.005", "has 3 decimal places, more than the column's scale 2 (values are never rounded)"),
            (5, "valor", "1e400", "out of range for decimal(14, 2)"),
        ],
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(QUARANTINE_CASES))
def test_each_bad_file_yields_its_good_rows_and_quarantines_the_rest_and_counts_reconcile(name):
    path = CASES / name
    expected_ids, expected_quarantine = QUARANTINE_CASES[name]

    reader, good = read(path)
    loaded = load(good)

    assert reader.columns == ["id_externo", "valor", "data"]  # a BOM never sticks to the first name
    assert ([] if good is None else good["id_externo"].tolist()) == expected_ids
    assert_frame_equal(reader.quarantine, quarantine_frame(path, expected_quarantine))
    assert sorted(FonteExterna.objects.values_list("id_externo", flat=True)) == sorted(expected_ids)
    assert reader.n_rows == loaded + reader.n_errors
    assert (reader.n_yielded, reader.n_errors) == (len(expected_ids), len(expected_quarantine))


def test_an_empty_file_is_a_clear_error():
    with pytest.raises(EmptySourceError, match=r"empty\.csv is empty: no header line"):
        read_csv_chunks(CASES / "empty.csv")


@pytest.mark.django_db
def test_duplicate_column_names_are_kept_apart_and_refused_by_the_load_before_any_write():
    reader, good = read(CASES / "duplicate_columns.csv")
    assert reader.columns == ["id_externo", "valor", "valor.1", "data"]  # pandas' mangling, nothing overwritten
    assert good["valor"].tolist() == [Decimal("10.00"), Decimal("11.00")]
    assert good["valor.1"].tolist() == [10.0, 12.0]

    with pytest.raises(LoadValidationError, match=r"unknown column\(s\) 'valor\.1'") as info:
        write_model(good, FonteExterna, mode="append")

    assert info.value.column == "valor.1"
    assert FonteExterna.objects.count() == 0


@pytest.mark.django_db
def test_negative_quantities_pass_the_reader_and_are_refused_by_the_model_load_naming_column_and_rows():
    # Gap (docs/reliability.md): read_csv_chunks has no row-level rule (a pandera-style
    # check), so a negative quantity is only caught by the model's PositiveIntegerField.
    reader, good = read(
        CASES / "negative_quantities.csv", {"decimals": {"total": (14, 2), "custo": (14, 2)}, "dates": ["criado_em"]}
    )
    assert (reader.n_rows, reader.n_errors) == (3, 0)
    assert good["quantidade"].tolist() == [2, -3, 1]

    with pytest.raises(LoadValidationError, match="quantidade") as info:
        write_model(good, Pedido, mode="append")

    assert info.value.column == "quantidade"
    assert Pedido.objects.count() == 0


# -- product bugs found by the corpus (fixed; these tests keep them fixed) --------


def test_a_nul_byte_in_any_field_is_quarantined():
    reader, good = read(CASES / "nul_bytes.csv")
    assert good["id_externo"].tolist() == ["N1", "N4"]
    assert reader.quarantine[["line", "column"]].values.tolist() == [[3, "id_externo"], [4, "valor"]]
    assert reader.quarantine["reason"].str.startswith("NUL byte").all()
    # Shown as U+FFFD: the quarantine is stored with the run record, where a NUL byte would be refused.
    assert reader.quarantine["value"].tolist() == ["N\ufffd2", "1\ufffd2.00"]


@pytest.mark.django_db
def test_write_model_refuses_a_nul_byte_in_text_naming_the_column():
    frame = pd.DataFrame(
        {"id_externo": ["ok", "N\x002"], "valor": [Decimal("1.00")] * 2, "data": pd.to_datetime(["2026-01-01"] * 2)}
    )
    with pytest.raises(LoadValidationError, match="id_externo"):
        write_model(frame, FonteExterna, mode="append")


def test_a_date_in_year_zero_is_quarantined():
    reader, good = read(CASES / "year_zero_date.csv")
    assert good["id_externo"].tolist() == ["Z1"]
    assert reader.quarantine[["line", "column", "value"]].values.tolist() == [[3, "data", "0000-01-01"]]


@pytest.mark.django_db
def test_a_datetime_past_year_9999_in_utc_is_refused_by_write_model():
    reader, good = read(CASES / "end_of_time_date.csv")
    assert reader.n_errors == 0
    with pytest.raises(LoadValidationError, match="data"):
        write_model(good, FonteExterna, mode="append")


@pytest.mark.django_db
def test_write_model_refuses_dates_and_datetimes_python_cannot_hold_naming_column_and_rows():
    # Arrow holds the year 0; Python, Django and the databases do not.
    def arrow_column(values: list[str], arrow_type: pa.DataType) -> pd.Series:
        return pd.Series(pa.array(values).cast(arrow_type), dtype=pd.ArrowDtype(arrow_type))

    destino = pd.DataFrame(
        {
            "id_externo": ["D1", "D2"],
            "valor": [Decimal("1.00")] * 2,
            "data": arrow_column(["2026-01-01", "0000-01-01"], pa.date32()),
        }
    )
    with pytest.raises(
        LoadValidationError, match=r"'data': 1 date value\(s\) outside the years 1-9999.*row 1: '0000"
    ) as info:
        write_model(destino, Destino, mode="append")
    assert (info.value.column, info.value.rows) == ("data", [1])

    fonte = destino.assign(data=arrow_column(["2026-01-01", "0000-01-01"], pa.timestamp("us")))
    with pytest.raises(LoadValidationError, match=r"'data': 1 datetime value\(s\) outside the years 1-9999"):
        write_model(fonte, FonteExterna, mode="append")
    assert Destino.objects.count() == FonteExterna.objects.count() == 0


def test_a_wrong_decimal_separator_in_a_brazilian_file_is_quarantined_not_read_100_times_larger():
    reader, good = read(CASES / "wrong_decimal_separator_br.csv", BRAZILIAN)
    assert good["valor"].tolist() == [Decimal("10.50"), Decimal("1234.56")]
    assert reader.quarantine[["line", "column", "value"]].values.tolist() == [[3, "valor", "10.50"]]


def test_an_unclosed_quote_is_named_in_the_reason():
    reader, _ = read(CASES / "unclosed_quote.csv")
    assert "quote" in reader.quarantine["reason"].iloc[0]


@pytest.mark.django_db
def test_a_50_mb_single_field_is_read_and_its_row_refused_by_the_load_with_a_clear_error(tmp_path):
    path = tmp_path / "huge_field.csv"
    with path.open("w") as out:
        out.write("id_externo,valor,data\nH1,1.00,2026-01-01\n")
        out.write('"' + "x" * (50 << 20) + '",2.00,2026-01-02\n')
        out.write("H3,3.00,2026-01-03\n")

    reader, good = read(path)

    assert (reader.n_rows, reader.n_errors) == (3, 0)
    assert good["id_externo"].str.len().tolist() == [2, 50 << 20, 2]
    with pytest.raises(LoadValidationError, match="longer than max_length=64"):
        write_model(good, FonteExterna, mode="append")
