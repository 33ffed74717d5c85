"""read_csv_chunks: conventions, exact decimals, quarantine with physical line numbers."""

from __future__ import annotations

import gzip
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

import dw_analytics.extract.csv as csv_module
from dw_analytics.core.exceptions import ConfigurationError
from dw_analytics.extract.csv import CsvChunks, read_csv_chunks
from dw_analytics.extract.exceptions import (
    BadRowError,
    EmptySourceError,
    SourceNotFoundError,
    UnsupportedSourceError,
)
from transforms.rollup import rollup

FIXTURES = Path(__file__).parent / "fixtures"
INT = pd.ArrowDtype(pa.int64())
STR = pd.ArrowDtype(pa.string())
DATE = pd.ArrowDtype(pa.timestamp("us"))


def dec(precision, scale):
    return pd.ArrowDtype(pa.decimal128(precision, scale))


def money(values, precision=18, scale=2):
    return pd.array([Decimal(v) for v in values], dtype=dec(precision, scale))


def read_all(reader) -> pd.DataFrame:
    frames = list(reader)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def quarantine_frame(path: Path, rows) -> pd.DataFrame:
    frame = pd.DataFrame([(str(path), *row) for row in rows], columns=["file", "line", "column", "value", "reason"])
    return frame.astype({"file": "str", "line": "int64", "column": "str", "value": "str", "reason": "str"})


def test_brazilian_conventions_semicolon_comma_decimal_thousands_and_day_first_dates():
    reader = read_csv_chunks(
        FIXTURES / "vendas_br.csv",
        sep=";",
        decimal=",",
        thousands=".",
        decimals={"total": 2, "custo": (12, 2)},
        dates={"data": "%d/%m/%Y"},
    )
    expected = pd.DataFrame(
        {
            "id": pd.array([1, 2, 3, 4], dtype=INT),
            "data": pd.array(
                pd.to_datetime(["2024-01-05", "2024-01-06", "2024-12-31", "2024-02-29"]),
                dtype=DATE,
            ),
            "categoria": pd.array(["Eletrônicos", "Livros", "Casa e Jardim", "Livros"], dtype=STR),
            "quantidade": pd.array([2, 1, 10, 3], dtype=INT),
            "total": money(["1234.50", "39.90", "12345678.99", "-5.00"]),
            "custo": money(["987.65", "20.00", "10000000.01", "0.00"], 12, 2),
        }
    )
    assert_frame_equal(read_all(reader), expected)
    assert (reader.n_rows, reader.n_errors, reader.n_yielded) == (4, 0, 4)


def test_utf8_bom_is_skipped_and_iso_dates_accept_times():
    reader = read_csv_chunks(FIXTURES / "vendas_bom.csv", dates=["data"], decimals={"total": 2})
    assert reader.columns == ["id", "data", "categoria", "total"]
    expected = pd.DataFrame(
        {
            "id": pd.array([1, 2], dtype=INT),
            "data": pd.array(pd.to_datetime(["2024-01-05 00:00:00", "2024-01-06 13:45:00"]), dtype=DATE),
            "categoria": pd.array(["Eletrônicos", "Livros"], dtype=STR),
            "total": money(["10.50", "3.25"]),
        }
    )
    assert_frame_equal(read_all(reader), expected)


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "auto"])
def test_windows_1252_file_decodes_with_explicit_or_detected_encoding(encoding):
    reader = read_csv_chunks(
        FIXTURES / "produtos_cp1252.csv",
        sep=";",
        decimal=",",
        encoding=encoding,
        decimals={"preco": 2},
        usecols=["produto", "preco"],
    )
    expected = pd.DataFrame(
        {
            "produto": pd.array(
                ["Açúcar refinado", "Pão de queijo", "Café torrado", "Feijão preto", "Maçã Gala"],
                dtype=STR,
            ),
            "preco": money(["4.99", "12.50", "18.90", "8.75", "9.99"]),
        }
    )
    assert_frame_equal(read_all(reader), expected)


@pytest.mark.parametrize("name", ["vendas.csv.gz", "vendas.zip"])
def test_gzip_and_zip_inputs_are_decompressed(name):
    reader = read_csv_chunks(FIXTURES / name, decimals={"total": 2}, chunksize=2)
    frames = list(reader)
    assert [len(f) for f in frames] == [2, 1]
    expected = pd.DataFrame(
        {
            "id": pd.array([1, 2, 3], dtype=INT),
            "categoria": pd.array(["Livros", "Jogos", "Livros"], dtype=STR),
            "total": money(["10.50", "3.25", "0.05"]),
        }
    )
    assert_frame_equal(pd.concat(frames, ignore_index=True), expected)


def test_quoted_fields_with_separators_quotes_and_newlines_keep_physical_line_numbers():
    path = FIXTURES / "quoted_newlines.csv"
    reader = read_csv_chunks(path, decimals={"total": 2})
    expected = pd.DataFrame(
        {
            "id": pd.array([1, 2, 3, 4, 7], dtype=INT),
            "descricao": pd.array(
                ["simple", "has, comma", "multi\nline\ntext", 'say "hi"', 'last "one"\nhere'],
                dtype=STR,
            ),
            "total": money(["1.00", "2.00", "3.00", "4.00", "7.00"]),
        }
    )
    assert_frame_equal(read_all(reader), expected)
    # Record 5 starts on line 8 (records 3 and 5 span lines); record 6 is on line 10.
    assert_frame_equal(
        reader.quarantine,
        quarantine_frame(
            path,
            [
                (8, "total", "x.00", "not a decimal number (decimal mark '.')"),
                (10, np.nan, '6,"ok",6.00,extra', "expected 3 fields, found 4"),
            ],
        ),
    )


BAD_ROWS_OPTIONS = {"dates": ["data"], "dtypes": {"quantidade": "int64"}, "decimals": {"total": 2}}


def test_every_kind_of_bad_row_is_quarantined_with_line_column_value_and_reason():
    path = FIXTURES / "bad_rows.csv"
    reader = read_csv_chunks(path, **BAD_ROWS_OPTIONS)
    good = read_all(reader)
    assert good["id"].tolist() == [1, 10, 11]
    # 1.230 fits scale 2 exactly (trailing zero): kept, not rounded.
    assert good["total"].tolist() == [Decimal("10.50"), Decimal("1.23"), Decimal("0.01")]
    expected = quarantine_frame(
        path,
        [
            (3, np.nan, "2,2024-01-06,Livros,2,10.50,extra", "expected 5 fields, found 6"),
            (4, np.nan, "3,2024-01-07,Livros", "expected 5 fields, found 3"),
            (5, "quantidade", "dois", "not an integer"),
            (6, "total", "abc", "not a decimal number (decimal mark '.')"),
            (
                7,
                "total",
                "10.505",
                "has 3 decimal places, more than the column's scale 2 (values are never rounded)",
            ),
            (8, "total", "99999999999999999.99", "out of range for decimal(18, 2)"),
            (9, "quantidade", "99999999999999999999", "out of range for int64"),
            (
                10,
                "data",
                "2024-13-01",
                "not an ISO 8601 date (YYYY-MM-DD or YYYY-MM-DD HH:MM:SS)",
            ),
        ],
    )
    assert_frame_equal(reader.quarantine, expected)
    assert (reader.n_rows, reader.n_yielded, reader.n_errors) == (11, 3, 8)


def test_write_quarantine_writes_the_quarantine_as_csv(tmp_path):
    reader = read_csv_chunks(FIXTURES / "bad_rows.csv", **BAD_ROWS_OPTIONS)
    read_all(reader)
    target = reader.write_quarantine(tmp_path / "q.csv")
    written = pd.read_csv(target)
    assert list(written.columns) == ["file", "line", "column", "value", "reason"]
    assert written["line"].tolist() == [3, 4, 5, 6, 7, 8, 9, 10]


def test_on_bad_lines_error_raises_at_the_first_bad_row_naming_file_and_line():
    path = FIXTURES / "bad_rows.csv"
    reader = read_csv_chunks(path, on_bad_lines="error", **BAD_ROWS_OPTIONS)
    with pytest.raises(BadRowError, match=r"bad_rows\.csv, line 3: expected 5 fields") as info:
        read_all(reader)
    assert (info.value.file, info.value.line) == (str(path), 3)


def test_on_bad_lines_error_names_column_and_value_of_a_bad_value(tmp_path):
    path = tmp_path / "v.csv"
    path.write_text("id,total\n1,1.00\n2,1.005\n")
    with pytest.raises(BadRowError, match=r"line 3, column 'total': has 3 decimal places") as info:
        read_all(read_csv_chunks(path, decimals={"total": 2}, on_bad_lines="error"))
    assert (info.value.column, info.value.value) == ("total", "1.005")


def test_invalid_utf8_bytes_are_quarantined_with_a_hint(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("id,nome\n1,ok\n2,Jo\xe3o\n".encode("latin-1"))
    reader = read_csv_chunks(path)
    assert read_all(reader)["nome"].tolist() == ["ok"]
    [row] = reader.quarantine.itertuples(index=False)
    assert (row.line, row.column, row.value) == (3, "nome", "Jo\ufffdo")
    assert "encoding=" in row.reason


def test_missing_file_empty_file_and_header_only_file():
    with pytest.raises(SourceNotFoundError, match="CSV file not found"):
        read_csv_chunks(FIXTURES / "nope.csv")
    with pytest.raises(EmptySourceError, match="no header line"):
        read_csv_chunks(FIXTURES / "empty.csv")
    reader = read_csv_chunks(FIXTURES / "header_only.csv")
    assert list(reader) == []
    assert (reader.n_rows, reader.n_errors) == (0, 0)
    assert reader.columns == ["id", "categoria", "total"]


def test_zip_with_several_members_is_unsupported(tmp_path):
    import zipfile

    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", "x\n1\n")
        archive.writestr("b.csv", "x\n2\n")
    with pytest.raises(UnsupportedSourceError, match="exactly one file"):
        read_csv_chunks(path)


def test_invalid_options_are_configuration_errors():
    path = FIXTURES / "vendas_br.csv"
    with pytest.raises(ConfigurationError, match="must differ"):
        read_csv_chunks(path, sep=";", decimal=";")
    with pytest.raises(ConfigurationError, match=r"\['nope'\] are not in the header"):
        read_csv_chunks(path, sep=";", usecols=["nope"])
    with pytest.raises(ConfigurationError, match="give a scale"):
        read_csv_chunks(path, sep=";", decimals={"total": "2"})
    with pytest.raises(ConfigurationError, match="more than one of dtypes, decimals, dates"):
        read_csv_chunks(path, sep=";", decimals={"total": 2}, dtypes={"total": "float64"})
    with pytest.raises(ConfigurationError, match="on_bad_lines"):
        read_csv_chunks(path, sep=";", on_bad_lines="skip")


def test_thousands_separated_columns_are_inferred_as_numbers(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a;b;c\n1.234;1.234,5;x\n5;6,25;y\n")
    frame = read_all(read_csv_chunks(path, sep=";", decimal=",", thousands="."))
    assert frame["a"].tolist() == [1234, 5]
    assert frame["b"].tolist() == [1234.5, 6.25]
    assert frame.dtypes.tolist() == [INT, pd.ArrowDtype(pa.float64()), STR]


def test_chunks_have_chunksize_rows_and_feed_rollup(tmp_path):
    path = tmp_path / "s.csv"
    lines = ["categoria,total"] + [f"{'ab'[i % 2]},{i}.{i % 100:02d}" for i in range(1, 1001)]
    path.write_text("\n".join(lines) + "\n")
    reader = CsvChunks(path, decimals={"total": 2}, chunksize=300, block_size=2048)
    result = rollup(reader, by="categoria", n=("total", "size"), s=("total", "sum"))
    assert [reader.n_rows, reader.n_yielded] == [1000, 1000]
    expected_sums = {
        key: sum(
            (Decimal(f"{i}.{i % 100:02d}") for i in range(1, 1001) if "ab"[i % 2] == key),
            Decimal(0),
        )
        for key in "ab"
    }
    assert result["n"].tolist() == [500, 500]
    assert dict(zip(result["categoria"], result["s"], strict=True)) == expected_sums


def test_block_size_changes_memory_not_results(tmp_path):
    path = tmp_path / "s.csv"
    lines = ["categoria,total"] + [f"{'ab'[i % 3 % 2]},{i}.{i % 100:02d}" for i in range(1, 2001)]
    path.write_text("\n".join(lines) + "\n")
    small = read_csv_chunks(path, decimals={"total": 2}, chunksize=700, block_size=1024)
    frames = list(small)
    assert_frame_equal(pd.concat(frames, ignore_index=True), read_all(read_csv_chunks(path, decimals={"total": 2})))
    assert [len(f) for f in frames] == [700, 700, 600] and small.n_rows == 2000
    with pytest.raises(ConfigurationError, match="block_size"):
        read_csv_chunks(path, block_size=10)


def test_decimal_values_keep_all_38_digits_of_precision(tmp_path):
    path = tmp_path / "big.csv"
    big = "1234567890123456789012345678901234.5678"
    path.write_text(f"v\n{big}\n-0.0001\n")
    frame = read_all(read_csv_chunks(path, decimals={"v": (38, 4)}))
    assert frame["v"].tolist() == [Decimal(big), Decimal("-0.0001")]


# --- property: rows yielded + rows quarantined == rows read, lines exact ------

GOOD_TEXT = st.text(alphabet='ab ,"\n;é', max_size=6)


@st.composite
def csv_rows(draw):
    """Rows as (kind, fields); kinds: good, extra_field, bad_int, too_many_places."""
    rows = []
    for i in range(draw(st.integers(0, 40))):
        kind = draw(st.sampled_from(["good"] * 5 + ["extra_field", "bad_int", "too_many_places"]))
        text = draw(GOOD_TEXT)
        cents = draw(st.integers(-(10**6), 10**6))
        total = f"{'-' if cents < 0 else ''}{abs(cents) // 100}.{abs(cents) % 100:02d}"
        fields = [str(i), '"' + text.replace('"', '""') + '"', total]
        if kind == "extra_field":
            fields.append("x")
        elif kind == "bad_int":
            fields[0] = "n" + str(i)
        elif kind == "too_many_places":
            fields[2] = total + "1"
        rows.append((kind, fields, text, Decimal(total)))
    return rows


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=csv_rows(), chunksize=st.integers(1, 7), blank_every=st.integers(2, 9))
def test_yielded_plus_quarantined_equals_read_with_exact_lines(tmp_path, monkeypatch, rows, chunksize, blank_every):
    # Tiny blocks and a tiny precise-path threshold exercise block cuts and bisection.
    monkeypatch.setattr(csv_module, "_PRECISE_PATH_BYTES", 64)
    lines, line, expected_bad_lines, good = ["id,texto,total"], 2, [], []
    for index, (kind, fields, text, total) in enumerate(rows):
        if index % blank_every == 1:
            lines.append("")
            line += 1
        record = ",".join(fields)
        lines.append(record)
        if kind == "good":
            good.append((index, text, total))
        else:
            expected_bad_lines.append(line)
        line += record.count("\n") + 1
    path = tmp_path / "p.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode())

    reader = CsvChunks(
        path,
        dtypes={"id": "int64", "texto": "string"},
        decimals={"total": 2},
        chunksize=chunksize,
        block_size=1024,
    )
    frames = list(reader)
    got = pd.concat(frames, ignore_index=True) if frames else None
    n_yielded = 0 if got is None else len(got)
    assert reader.n_rows == len(rows)
    assert n_yielded + reader.n_errors == reader.n_rows
    assert reader.quarantine["line"].tolist() == expected_bad_lines
    if got is not None:
        assert got["id"].tolist() == [i for i, _, _ in good]
        assert got["texto"].fillna("").tolist() == [t for _, t, _ in good]
        assert got["total"].tolist() == [d for _, _, d in good]


def test_gzip_stream_spanning_many_blocks_numbers_lines_across_blocks(tmp_path):
    rows = [f"{i},{i}.00" for i in range(1, 3001)]
    rows[2499] = "2500,oops"
    path = tmp_path / "big.csv.gz"
    path.write_bytes(gzip.compress(("id,total\n" + "\n".join(rows) + "\n").encode()))
    reader = CsvChunks(path, decimals={"total": 2}, block_size=4096)
    frame = read_all(reader)
    assert len(frame) == 2999
    assert reader.quarantine[["line", "value"]].values.tolist() == [[2501, "oops"]]


def test_closing_early_stops_the_read_ahead_and_closes_the_file(tmp_path):
    path = tmp_path / "many.csv"
    path.write_text("id\n" + "\n".join(str(i) for i in range(5000)) + "\n")
    with CsvChunks(path, chunksize=10, block_size=1024) as reader:
        first = next(reader)
        assert first["id"].tolist() == list(range(10))
    assert reader._source._stream.closed
    with pytest.raises(StopIteration):
        next(reader)


def test_bare_carriage_return_line_endings_are_unsupported(tmp_path):
    path = tmp_path / "mac.csv"
    path.write_bytes(b"a,b\r1,2\r")
    with pytest.raises(UnsupportedSourceError, match="bare carriage return"):
        read_csv_chunks(path)


def test_crlf_line_endings_and_blank_lines_keep_line_numbers(tmp_path):
    path = tmp_path / "crlf.csv"
    path.write_bytes(b"id,total\r\n1,1.00\r\n\r\n2,x\r\n3,3.00\r\n")
    reader = read_csv_chunks(path, decimals={"total": 2})
    assert read_all(reader)["id"].tolist() == [1, 3]
    assert reader.quarantine[["line", "column", "value"]].values.tolist() == [[4, "total", "x"]]


def test_bad_values_in_converted_columns_are_quarantined_in_brazilian_files(tmp_path):
    path = tmp_path / "br.csv"
    path.write_text(
        "data;total;qtd\n"
        "05/01/2024;1.234,50;1.000\n"
        "32/01/2024;10,00;1\n"
        "06/01/2024;10,001;2\n"
        "07/01/2024;1,00;três\n"
        "08/01/2024;2,50;3\n",
        encoding="utf-8",
    )
    reader = read_csv_chunks(
        path,
        sep=";",
        decimal=",",
        thousands=".",
        decimals={"total": 2},
        dates={"data": "%d/%m/%Y"},
        dtypes={"qtd": pd.ArrowDtype(pa.int32())},
    )
    frame = read_all(reader)
    assert frame["total"].tolist() == [Decimal("1234.50"), Decimal("2.50")]
    assert frame["qtd"].tolist() == [1000, 3]
    assert frame["qtd"].dtype == pd.ArrowDtype(pa.int32())
    assert_frame_equal(
        reader.quarantine,
        quarantine_frame(
            path,
            [
                (3, "data", "32/01/2024", "not a date in format '%d/%m/%Y'"),
                (
                    4,
                    "total",
                    "10,001",
                    "has 3 decimal places, more than the column's scale 2 (values are never rounded)",
                ),
                (5, "qtd", "três", "not an integer"),
            ],
        ),
    )


@pytest.mark.parametrize("encoding", ["cp1252", "auto"])
def test_late_bad_row_in_a_transcoded_file_gets_its_exact_line(tmp_path, encoding):
    rows = [f"{i};Pão nº {i};{i},50" for i in range(1, 2001)]
    rows[1799] = "1800;Pão nº 1800;1,505"
    path = tmp_path / "cp.csv"
    path.write_bytes(("id;nome;valor\r\n" + "\r\n".join(rows) + "\r\n").encode("cp1252"))
    reader = CsvChunks(path, sep=";", decimal=",", encoding=encoding, decimals={"valor": 2}, block_size=2048)
    frame = read_all(reader)
    assert len(frame) == 1999
    assert frame["nome"].iloc[0] == "Pão nº 1"
    assert reader.quarantine[["line", "column", "value"]].values.tolist() == [[1801, "valor", "1,505"]]
