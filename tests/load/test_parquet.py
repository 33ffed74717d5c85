"""write_parquet / publish_snapshot write files Power BI, pyarrow and DuckDB read alike."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pandas.testing import assert_frame_equal

import dw_analytics
from dw_analytics.load import parquet
from dw_analytics.load.base import LoadResult
from dw_analytics.load.exceptions import (
    LoadError,
    LoadValidationError,
    OutputPathError,
    SnapshotError,
)
from dw_analytics.load.parquet import (
    list_snapshot_versions,
    open_snapshot,
    publish_snapshot,
    read_snapshot,
    write_parquet,
)

MONEY_IN = pd.ArrowDtype(pa.decimal128(18, 2))
MONEY_OUT = pd.ArrowDtype(pa.decimal128(19, 2))

# Thrift compact encoding of PageHeader field 1 (``type``, i32): 0x15 then the
# zigzag varint of the enum. DATA_PAGE = 0 → 0x00, DATA_PAGE_V2 = 3 → 0x06.
DATA_PAGE_V1 = b"\x15\x00"
DATA_PAGE_V2 = b"\x15\x06"


def sales_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pedido_id": pd.array([1, 2, 3, 4], dtype="uint64"),
            "categoria": pd.Categorical(["Bebidas", "Limpeza", "Bebidas", "Bebidas"]),
            "cliente": pd.Series(["Ana", "Bruno", None, "Davi"], dtype="str"),
            "total": pd.array([Decimal("0.01"), Decimal("12345678901.99"), Decimal("-7.50"), None], dtype=MONEY_IN),
            "criado_em": pd.to_datetime(
                [
                    "2026-01-01 02:59:59.123456",
                    "2026-01-01 03:00:00",
                    "2026-07-15 12:00:00",
                    None,
                ],
                format="ISO8601",
            ).tz_localize("UTC"),
            "entregue_em": pd.Series(
                pd.to_datetime(
                    ["2026-01-02 10:00:00.000001999", None, "2026-07-16 08:30:00", "2026-01-03"],
                    format="ISO8601",
                )
            ).astype("datetime64[ns]"),
            "data": [dt.date(2025, 12, 31), dt.date(2026, 1, 1), dt.date(2026, 7, 15), None],
            "quantidade": np.array([1, 2, 3, 4], dtype="int32"),
            "ativo": [True, False, True, True],
            "margem": [0.25, 0.5, None, 0.125],
        }
    )


def expected_sales() -> pd.DataFrame:
    """sales_frame as it must read back: São Paulo wall time, µs, exact decimals."""
    return pd.DataFrame(
        {
            "pedido_id": np.array([1, 2, 3, 4], dtype="int64"),
            "categoria": pd.Series(["Bebidas", "Limpeza", "Bebidas", "Bebidas"], dtype="str"),
            "cliente": pd.Series(["Ana", "Bruno", None, "Davi"], dtype="str"),
            "total": pd.array(
                [Decimal("0.01"), Decimal("12345678901.99"), Decimal("-7.50"), None],
                dtype=MONEY_OUT,
            ),
            "criado_em": pd.Series(
                pd.to_datetime(
                    [
                        "2025-12-31 23:59:59.123456",
                        "2026-01-01 00:00:00",
                        "2026-07-15 09:00:00",
                        None,
                    ],
                    format="ISO8601",
                )
            ).astype("datetime64[us]"),
            "entregue_em": pd.Series(
                pd.to_datetime(
                    ["2026-01-02 10:00:00.000001", None, "2026-07-16 08:30:00", "2026-01-03"],
                    format="ISO8601",
                )
            ).astype("datetime64[us]"),
            "data": [dt.date(2025, 12, 31), dt.date(2026, 1, 1), dt.date(2026, 7, 15), None],
            "quantidade": np.array([1, 2, 3, 4], dtype="int32"),
            "ativo": [True, False, True, True],
            "margem": [0.25, 0.5, np.nan, 0.125],
        }
    )


def read_back(path: Path | str) -> pd.DataFrame:
    table = pq.read_table(path)
    return table.to_pandas(types_mapper=lambda t: pd.ArrowDtype(t) if pa.types.is_decimal(t) else None)


def data_page_headers(path: Path | str) -> set[bytes]:
    """The first two bytes of every column chunk's first data page header."""
    metadata = pq.ParquetFile(path).metadata
    raw = Path(path).read_bytes()
    return {
        raw[chunk.data_page_offset : chunk.data_page_offset + 2]
        for rg in range(metadata.num_row_groups)
        for chunk in (metadata.row_group(rg).column(c) for c in range(metadata.num_columns))
    }


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ----------------------------------------------------------------- single file


def test_round_trip_is_exact_to_the_cent_in_sao_paulo_wall_time(output_dir):
    result = write_parquet(sales_frame(), "sales.parquet", run_id=42, description="Pedidos")

    assert isinstance(result, LoadResult)
    assert result.target == str(output_dir.resolve() / "sales.parquet")
    assert (result.n_inserted, result.n_row_groups) == (4, 1)
    assert result.duration_s > 0
    assert_frame_equal(read_back(result.target), expected_sales())


def test_the_schema_holds_only_types_power_bi_loads_faithfully(output_dir):
    path = write_parquet(sales_frame(), "sales.parquet").target
    arrow_schema = pq.read_schema(path)

    assert arrow_schema.field("pedido_id").type == pa.int64()  # no uint64
    assert arrow_schema.field("categoria").type == pa.string()
    assert arrow_schema.field("cliente").type == pa.string()  # not large_string
    assert arrow_schema.field("total").type == pa.decimal128(19, 2)
    assert arrow_schema.field("criado_em").type == pa.timestamp("us")  # naive, µs
    assert arrow_schema.field("entregue_em").type == pa.timestamp("us")
    assert arrow_schema.field("data").type == pa.date32()
    assert not any(pa.types.is_unsigned_integer(f.type) for f in arrow_schema)

    parquet_file = pq.ParquetFile(path)
    columns = {c.name: c for c in parquet_file.schema}
    assert columns["criado_em"].physical_type == "INT64"  # never INT96
    assert "isAdjustedToUTC=false" in str(columns["criado_em"].logical_type)
    assert "timeUnit=microseconds" in str(columns["criado_em"].logical_type)
    assert str(columns["total"].logical_type) == "Decimal(precision=19, scale=2)"
    metadata = parquet_file.metadata
    assert metadata.format_version == "1.0"
    row_group = metadata.row_group(0)
    assert {row_group.column(i).compression for i in range(metadata.num_columns)} == {"SNAPPY"}
    assert data_page_headers(path) == {DATA_PAGE_V1}


def test_the_page_header_check_tells_v1_from_v2_pages(tmp_path):
    table = pa.table({"x": [1, 2, 3]})
    pq.write_table(table, tmp_path / "v2.parquet", data_page_version="2.0")
    pq.write_table(table, tmp_path / "v1.parquet", data_page_version="1.0")
    assert data_page_headers(tmp_path / "v2.parquet") == {DATA_PAGE_V2}
    assert data_page_headers(tmp_path / "v1.parquet") == {DATA_PAGE_V1}


def test_low_cardinality_columns_are_dictionary_encoded_and_unique_ones_are_not(output_dir):
    df = pd.DataFrame({"categoria": ["A", "B"] * 50, "pedido_id": np.arange(100)})
    path = write_parquet(df, "dict.parquet").target
    chunks = pq.ParquetFile(path).metadata.row_group(0)
    assert "PLAIN_DICTIONARY" in chunks.column(0).encodings
    assert "PLAIN_DICTIONARY" not in chunks.column(1).encodings


def test_the_footer_carries_run_metadata_and_no_pandas_metadata(output_dir):
    path = write_parquet(
        sales_frame(),
        "sales.parquet",
        run_id=42,
        description="One row per order",
        column_descriptions={"total": "Order total in BRL"},
        metadata={"source": "sales.Pedido"},
    ).target
    kv = {k.decode(): v.decode() for k, v in pq.ParquetFile(path).metadata.metadata.items()}

    assert "pandas" not in kv and "ARROW:schema" not in kv
    assert kv["dw_analytics.run_id"] == "42"
    assert kv["dw_analytics.num_rows"] == "4"
    assert kv["dw_analytics.version"] == dw_analytics.__version__
    assert kv["dw_analytics.timezone"] == "America/Sao_Paulo"
    assert kv["source"] == "sales.Pedido"
    created = dt.datetime.fromisoformat(kv["dw_analytics.created_at"])
    assert abs((dt.datetime.now(dt.UTC) - created).total_seconds()) < 60
    described = json.loads(kv["dw_analytics.schema"])
    assert described["description"] == "One row per order"
    assert {
        "name": "total",
        "type": "decimal128(19, 2)",
        "description": "Order total in BRL",
    } in described["columns"]


def test_duckdb_reads_the_same_values_and_types_as_pyarrow(output_dir):
    path = write_parquet(sales_frame(), "sales.parquet").target
    relation = duckdb.sql(f"SELECT * FROM read_parquet('{path}')")
    arrow_rows = [tuple(row.values()) for row in pq.read_table(path).to_pylist()]

    assert relation.fetchall() == arrow_rows
    types = dict(zip(relation.columns, [str(t) for t in relation.types], strict=True))
    assert types["pedido_id"] == "BIGINT"
    assert types["total"] == "DECIMAL(19,2)"
    assert types["criado_em"] == "TIMESTAMP"
    assert types["cliente"] == "VARCHAR"
    total = duckdb.sql(f"SELECT sum(total) FROM read_parquet('{path}')").fetchall()[0][0]
    assert total == Decimal("12345678894.50")
    assert arrow_rows[1][3] == Decimal("12345678901.99")


def test_timezone_utc_keeps_utc_wall_time(output_dir):
    path = write_parquet(sales_frame(), "utc.parquet", timezone="UTC").target
    got = read_back(path)["criado_em"]
    assert got[0] == pd.Timestamp("2026-01-01 02:59:59.123456")
    assert got.dtype == "datetime64[us]"


def test_money_as_float_writes_doubles(output_dir):
    path = write_parquet(sales_frame(), "float.parquet", money_as_float=True).target
    assert pq.read_schema(path).field("total").type == pa.float64()
    assert read_back(path)["total"].tolist()[:3] == [0.01, 12345678901.99, -7.5]


def test_a_wider_scale_is_reduced_when_no_value_loses_a_digit(output_dir):
    df = pd.DataFrame({"preco": pd.array([Decimal("1.2345"), Decimal("2")], dtype=pd.ArrowDtype(pa.decimal128(38, 6)))})
    path = write_parquet(df, "scale.parquet").target
    assert pq.read_schema(path).field("preco").type == pa.decimal128(19, 4)
    assert read_back(path)["preco"].tolist() == [Decimal("1.2345"), Decimal("2.0000")]


def test_a_value_with_too_many_decimals_is_refused_with_its_row(output_dir):
    df = pd.DataFrame(
        {"preco": pd.array([Decimal("1.25"), Decimal("0.123456")], dtype=pd.ArrowDtype(pa.decimal128(38, 6)))}
    )
    with pytest.raises(LoadValidationError, match=r"'preco', row 1: value 0.123456 has more than 4") as info:
        write_parquet(df, "scale.parquet")
    assert (info.value.column, info.value.rows) == ("preco", [1])
    assert not (output_dir / "scale.parquet").exists()


def test_a_value_beyond_power_bi_fixed_decimal_range_is_refused(output_dir):
    df = pd.DataFrame(
        {
            "total": pd.array(
                [Decimal("1.00"), Decimal("1000000000000000.00")],
                dtype=pd.ArrowDtype(pa.decimal128(38, 2)),
            )
        }
    )
    with pytest.raises(LoadValidationError, match="outside Power BI's fixed decimal range") as info:
        write_parquet(df, "big.parquet")
    assert info.value.rows == [1]


def test_uint64_above_int64_is_refused(output_dir):
    df = pd.DataFrame({"id": np.array([1, 2**63], dtype="uint64")})
    with pytest.raises(LoadValidationError, match="row 1: value 9223372036854775808 exceeds the int64"):
        write_parquet(df, "u.parquet")


@pytest.mark.parametrize(
    ("column", "message"),
    [
        (pa.array([b"x"]), "binary"),
        (pa.array([[1, 2]]), "nested"),
        (pa.array([dt.timedelta(seconds=3)]), "a duration"),
    ],
)
def test_columns_power_bi_cannot_load_are_refused_by_name(output_dir, column, message):
    with pytest.raises(LoadValidationError, match=f"Column 'bad' is {message}"):
        write_parquet(pa.table({"bad": column}), "bad.parquet")


def test_an_empty_dataframe_writes_a_file_with_its_schema(output_dir):
    result = write_parquet(sales_frame().head(0), "empty.parquet")
    assert result.n_inserted == 0
    table = pq.read_table(result.target)
    assert table.num_rows == 0
    assert table.schema.field("total").type == pa.decimal128(19, 2)


def test_no_chunks_and_no_schema_is_an_error(output_dir):
    with pytest.raises(LoadValidationError, match="No chunk arrived"):
        write_parquet(iter([]), "nothing.parquet")
    schema = pa.schema([("total", pa.decimal128(12, 2))])
    result = write_parquet(iter([]), "nothing.parquet", schema=schema)
    assert pq.read_schema(result.target).field("total").type == pa.decimal128(19, 2)


def test_an_escaping_path_is_refused_before_writing(output_dir):
    with pytest.raises(OutputPathError):
        write_parquet(sales_frame(), "../outside.parquet")


# ----------------------------------------------------------------- streaming


def _chunks(n_chunks: int, rows: int):
    for k in range(n_chunks):
        ids = np.arange(k * rows, (k + 1) * rows)
        yield pd.DataFrame(
            {
                "id": ids,
                "total": pd.array([Decimal(int(i)) / 100 for i in ids], dtype=pd.ArrowDtype(pa.decimal128(12, 2))),
            }
        )


def test_chunks_are_streamed_into_full_row_groups(output_dir):
    result = write_parquet(_chunks(5, 30), "stream.parquet", row_group_size=50)
    metadata = pq.ParquetFile(result.target).metadata

    assert result.n_inserted == 150
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [50, 50, 50]
    expected = pd.concat(list(_chunks(5, 30)), ignore_index=True)
    expected["total"] = expected["total"].astype(MONEY_OUT)
    assert_frame_equal(read_back(result.target), expected)


def test_later_chunks_are_cast_to_the_first_chunks_types(output_dir):
    first = pd.DataFrame({"id": np.array([1], dtype="int64"), "obs": [None]})
    second = pd.DataFrame({"id": np.array([2], dtype="int32"), "obs": ["texto"]})
    path = write_parquet(iter([first, second]), "cast.parquet").target
    assert read_back(path)["obs"].tolist()[1] == "texto"
    assert pq.read_schema(path).field("obs").type == pa.string()


def test_a_chunk_with_another_type_is_refused_with_a_hint(output_dir):
    first = pd.DataFrame({"id": [1]})
    second = pd.DataFrame({"id": ["x"]})
    with pytest.raises(LoadValidationError, match=r"Chunk 1 .*column 'id' has type string.*schema="):
        write_parquet(iter([first, second]), "mixed.parquet")


def test_a_failing_stream_leaves_the_previous_file_intact(output_dir):
    write_parquet(sales_frame(), "sales.parquet")

    def broken():
        yield sales_frame()
        raise RuntimeError("extract died")

    with pytest.raises(RuntimeError, match="extract died"):
        write_parquet(broken(), "sales.parquet")
    assert_frame_equal(read_back(output_dir / "sales.parquet"), expected_sales())
    assert _entries(output_dir) == ["sales.parquet"]


# ----------------------------------------------------------------- partitions


def partitioned_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "year": [2025, 2026, 2026, 2026],
            "month": ["12", "01", "01", "02"],
            "total": pd.array([Decimal("1.10"), Decimal("2.20"), Decimal("3.30"), Decimal("4.40")], dtype=MONEY_IN),
        }
    )


def test_partitioned_output_keeps_partition_columns_inside_the_files(output_dir):
    result = write_parquet(partitioned_frame(), "fact", partition_cols=["year", "month"])
    root = Path(result.target)

    relative = sorted(str(Path(f).relative_to(root)) for f in result.files)
    assert relative == [
        "year=2025/month=12/part-00000.parquet",
        "year=2026/month=01/part-00000.parquet",
        "year=2026/month=02/part-00000.parquet",
    ]
    january = read_back(root / "year=2026/month=01/part-00000.parquet")
    assert january["year"].tolist() == [2026, 2026]
    assert january["month"].tolist() == ["01", "01"]
    assert january["total"].tolist() == [Decimal("2.20"), Decimal("3.30")]
    combined = duckdb.sql(
        f"SELECT year, month, total FROM read_parquet('{root}/**/*.parquet', hive_partitioning = false) "
        "ORDER BY year, month, total"
    ).fetchall()
    assert combined == [
        (2025, "12", Decimal("1.10")),
        (2026, "01", Decimal("2.20")),
        (2026, "01", Decimal("3.30")),
        (2026, "02", Decimal("4.40")),
    ]


def test_partitioned_streaming_with_few_open_files_splits_parts(output_dir):
    chunks = [partitioned_frame(), partitioned_frame()]
    result = write_parquet(iter(chunks), "fact", partition_cols=["year"], max_open_files=1)
    root = Path(result.target)

    assert result.n_inserted == 8
    assert len(result.files) == 4  # each chunk reopens year=2025 and year=2026
    totals = sorted(v for f in result.files for v in read_back(f)["total"].tolist())
    assert totals == sorted([Decimal("1.10"), Decimal("2.20"), Decimal("3.30"), Decimal("4.40")] * 2)
    assert _entries(root) == ["year=2025", "year=2026"]


def test_republishing_a_partitioned_folder_replaces_it_whole(output_dir):
    write_parquet(partitioned_frame(), "fact", partition_cols=["year"])
    write_parquet(partitioned_frame().iloc[1:], "fact", partition_cols=["year"])
    assert _entries(output_dir / "fact") == ["year=2026"]
    assert _entries(output_dir) == ["fact"]


# ----------------------------------------------------------------- snapshots


def star(run: int, n_fact: int = 20) -> dict[str, pd.DataFrame]:
    fact = pd.DataFrame(
        {
            "run": np.full(n_fact, run),
            "date_key": np.arange(n_fact) % 3,
            "total": pd.array([Decimal(run) + Decimal("0.01")] * n_fact, dtype=MONEY_IN),
        }
    )
    dim = pd.DataFrame({"run": np.full(3, run), "date_key": [0, 1, 2], "year": [2026] * 3})
    return {"fact_sales": fact, "dim_date": dim}


def test_publish_snapshot_writes_a_version_manifest_and_pointer(output_dir):
    result = publish_snapshot(star(1), "star", run_id="night-1", partition_cols={"fact_sales": ["date_key"]})
    folder = output_dir / "star"

    assert result.n_inserted == 23
    assert result.version.startswith("v=") and result.version.endswith("_night-1")
    assert (folder / "CURRENT").read_text() == result.version + "\n"
    assert os.readlink(folder / "current") == result.version
    assert _entries(folder) == ["CURRENT", "current", result.version]
    assert _entries(folder / result.version) == ["_manifest.json", "dim_date.parquet", "fact_sales"]
    manifest = json.loads((folder / result.version / "_manifest.json").read_text())
    assert manifest["run_id"] == "night-1"
    assert manifest["tables"]["dim_date"]["files"] == ["dim_date.parquet"]
    assert manifest["tables"]["dim_date"]["n_rows"] == 3
    assert manifest["tables"]["fact_sales"]["files"] == [
        f"fact_sales/date_key={k}/part-00000.parquet" for k in range(3)
    ]
    assert {"name": "total", "type": "decimal128(19, 2)"} in manifest["tables"]["fact_sales"]["schema"]
    assert dt.datetime.fromisoformat(manifest["created_at"]).tzinfo is not None
    # Power BI's Folder connector on folder/current/ sees exactly these files.
    assert sorted(p.name for p in (folder / "current").rglob("*.parquet")) == [
        "dim_date.parquet",
        "part-00000.parquet",
        "part-00000.parquet",
        "part-00000.parquet",
    ]


def test_read_snapshot_follows_the_pointer_and_keeps_the_last_versions(output_dir):
    results = [publish_snapshot(star(run), "star", keep=2) for run in (1, 2, 3, 4)]

    assert list_snapshot_versions("star") == [results[2].version, results[3].version]
    assert results[3].removed_versions == [results[1].version]
    fact = read_snapshot("star", "fact_sales")
    assert fact["run"].unique().tolist() == [4]
    assert fact["total"].dtype == MONEY_OUT
    assert fact["total"].sum() == Decimal("80.20")
    older = open_snapshot("star", version=results[2].version)
    assert older.read("dim_date")["run"].tolist() == [3, 3, 3]


def test_reading_an_unknown_table_or_an_empty_folder_says_what_is_wrong(output_dir):
    with pytest.raises(SnapshotError, match="No snapshot has been published"):
        read_snapshot("star", "fact_sales")
    publish_snapshot(star(1), "star")
    with pytest.raises(SnapshotError, match=r"no table 'fact'.*'dim_date', 'fact_sales'"):
        read_snapshot("star", "fact")


def test_a_failure_mid_publish_leaves_the_old_snapshot_current_and_no_garbage(output_dir):
    first = publish_snapshot(star(1), "star")

    def broken_fact():
        yield star(2)["fact_sales"]
        raise RuntimeError("extract died")

    with pytest.raises(RuntimeError, match="extract died"):
        publish_snapshot({"dim_date": star(2)["dim_date"], "fact_sales": broken_fact()}, "star")

    folder = output_dir / "star"
    assert _entries(folder) == ["CURRENT", "current", first.version]
    assert read_snapshot("star", "dim_date")["run"].tolist() == [1, 1, 1]


def test_a_failed_pointer_switch_removes_the_unpublished_version(output_dir, monkeypatch):
    first = publish_snapshot(star(1), "star")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(parquet, "write_text_atomic", disk_full)
    with pytest.raises(LoadError, match="previous version is still current"):
        publish_snapshot(star(2), "star")
    assert _entries(output_dir / "star") == ["CURRENT", "current", first.version]
    assert read_snapshot("star", "fact_sales")["run"].unique().tolist() == [1]


def test_a_reader_during_publishes_sees_one_complete_run_at_a_time(output_dir):
    publish_snapshot(star(0, n_fact=200), "star", keep=2)
    failures: list[BaseException] = []
    done = threading.Event()

    def publisher():
        try:
            for run in range(1, 13):
                publish_snapshot(star(run, n_fact=200), "star", keep=2)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=publisher)
    thread.start()
    seen: set[int] = set()
    reads = 0
    while not done.is_set() or reads == 0:
        try:
            snapshot = open_snapshot("star")
            fact = snapshot.read("fact_sales")
            dim = snapshot.read("dim_date")
        except SnapshotError as exc:
            if exc.retryable:  # retention removed a pinned version: read the pointer again
                continue
            raise
        runs = set(fact["run"]) | set(dim["run"])
        assert len(runs) == 1, f"mixed runs {runs}"
        assert (len(fact), len(dim)) == (200, 3)
        seen |= runs
        reads += 1
    thread.join()

    assert not failures
    assert seen <= set(range(13))
    assert read_snapshot("star", "fact_sales")["run"].unique().tolist() == [12]
    assert len(list_snapshot_versions("star")) == 2
    assert not [p for p in (output_dir / "star").iterdir() if p.name.endswith(".tmp")]


def test_a_snapshot_can_carry_unchanged_partitions_over_by_hard_link(output_dir):
    from dw_analytics.load.parquet import open_snapshot, publish_snapshot, read_snapshot

    def months(*pairs):
        return pd.DataFrame({"month_key": [m for m, _ in pairs], "v": [v for _, v in pairs]})

    first = publish_snapshot(
        {"t": months((202401, 1), (202401, 2), (202402, 3))}, "snap", partition_cols={"t": ["month_key"]}
    )
    old_file = open_snapshot("snap").path / "t" / "month_key=202401" / "part-00000.parquet"

    second = publish_snapshot(
        {"t": months((202402, 30), (202403, 40))},
        "snap",
        partition_cols={"t": ["month_key"]},
        reuse_partitions={"t": ["month_key=202401"]},
    )

    result = read_snapshot("snap", "t").sort_values(["month_key", "v"]).reset_index(drop=True)
    assert result[["month_key", "v"]].values.tolist() == [[202401, 1], [202401, 2], [202402, 30], [202403, 40]]
    new_file = open_snapshot("snap").path / "t" / "month_key=202401" / "part-00000.parquet"
    assert new_file.stat().st_ino == old_file.stat().st_ino  # linked, not rewritten
    assert second.tables["t"]["n_rows"] == 4 and first.version != second.version

    only_reused = publish_snapshot(
        {"t": iter([])}, "snap", partition_cols={"t": ["month_key"]},
        reuse_partitions={"t": ["month_key=202401", "month_key=202402", "month_key=202403"]},
    )  # fmt: skip
    assert only_reused.tables["t"]["n_rows"] == 4
    assert len(read_snapshot("snap", "t")) == 4


def test_a_snapshot_can_carry_unchanged_tables_over_by_hard_link(output_dir):
    dims = pd.DataFrame({"k": [1, 2, 3], "name": ["a", "b", "c"]})
    publish_snapshot({"dim": dims, "fact": pd.DataFrame({"k": [1, 1, 2]})}, "snap")
    old_file = open_snapshot("snap").path / "dim.parquet"

    second = publish_snapshot({"fact": pd.DataFrame({"k": [3]})}, "snap", reuse_tables=["dim"])

    assert len(read_snapshot("snap", "fact")) == 1
    assert read_snapshot("snap", "dim")[["k", "name"]].values.tolist() == [[1, "a"], [2, "b"], [3, "c"]]
    assert (open_snapshot("snap").path / "dim.parquet").stat().st_ino == old_file.stat().st_ino
    assert second.tables["dim"]["n_rows"] == 3

    with pytest.raises(LoadValidationError, match="both given and in reuse_tables"):
        publish_snapshot({"dim": dims}, "snap", reuse_tables=["dim"])
    with pytest.raises(SnapshotError, match="has no table 'other'"):
        publish_snapshot({"fact": dims}, "snap", reuse_tables=["other"])
    assert open_snapshot("snap").version == second.version  # the failed publishes changed nothing
