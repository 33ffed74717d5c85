"""The disk fills or a write fails: the run fails with a clear message and the previous outputs stay.

Two ways: an ``OSError(ENOSPC)`` injected inside the Parquet and Excel
writers, and a real 1 MB tmpfs mounted as the output root (root only: under
``CI=true`` a failed mount fails the test, elsewhere it skips).
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xlsxwriter.workbook

from dw_analytics.load.excel import write_excel
from dw_analytics.load.exceptions import LoadError
from dw_analytics.load.parquet import (
    list_snapshot_versions,
    open_snapshot,
    publish_snapshot,
    read_snapshot,
    write_parquet,
)
from dw_analytics.load.paths import TEMP_SUFFIX

MONEY = pd.ArrowDtype(pa.decimal128(14, 2))
NO_SPACE = "No space left on device"


def sales(n_rows: int, run_no: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.arange(n_rows, dtype=np.int64),
            "run": np.full(n_rows, run_no, dtype=np.int64),
            "total": pd.array([Decimal(i % 1000).scaleb(-2) for i in range(n_rows)], dtype=MONEY),
        }
    )


def chunks_of(frame: pd.DataFrame, size: int = 100):
    return (frame.iloc[start : start + size] for start in range(0, len(frame), size))


def no_temporaries(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(f"*{TEMP_SUFFIX}"))


class FullDiskParquetWriter(pq.ParquetWriter):
    """A ParquetWriter whose second row group hits a full disk."""

    def write_table(self, table, row_group_size=None):
        self._groups = getattr(self, "_groups", 0) + 1
        if self._groups > 1:
            raise OSError(errno.ENOSPC, NO_SPACE, str(self.where))
        return super().write_table(table, row_group_size=row_group_size)


def test_a_full_disk_inside_the_parquet_writer_keeps_the_previous_file(output_dir, monkeypatch):
    write_parquet(sales(10, 1), "sales.parquet")
    before = (output_dir / "sales.parquet").read_bytes()
    monkeypatch.setattr(pq, "ParquetWriter", FullDiskParquetWriter)

    with pytest.raises(LoadError) as info:
        write_parquet(chunks_of(sales(1_000, 2)), "sales.parquet", row_group_size=100)

    message = str(info.value)
    assert "sales.parquet failed, nothing was published" in message and NO_SPACE in message
    assert info.value.target == str(output_dir / "sales.parquet")
    assert (output_dir / "sales.parquet").read_bytes() == before
    assert pd.read_parquet(output_dir / "sales.parquet")["run"].unique().tolist() == [1]
    assert no_temporaries(output_dir) == []


def test_a_full_disk_inside_a_snapshot_publish_keeps_the_previous_version_current(output_dir, monkeypatch):
    first = publish_snapshot({"fact": sales(10, 1), "dim": sales(2, 1)}, "star")
    monkeypatch.setattr(pq, "ParquetWriter", FullDiskParquetWriter)

    with pytest.raises(LoadError, match=f"previous version is still current.*{NO_SPACE}"):
        publish_snapshot({"dim": sales(2, 2), "fact": chunks_of(sales(1_000, 2))}, "star", row_group_size=100)

    assert list_snapshot_versions("star") == [first.version]
    assert open_snapshot("star").version == first.version
    assert read_snapshot("star", "fact")["run"].unique().tolist() == [1]
    assert no_temporaries(output_dir) == []


def test_a_full_disk_while_excel_stores_the_workbook_keeps_the_previous_workbook(output_dir, monkeypatch):
    write_excel({"Vendas": sales(5, 1)}, "report.xlsx")
    before = (output_dir / "report.xlsx").read_bytes()
    original = xlsxwriter.workbook.Workbook._store_workbook

    def store_then_fill_the_disk(self):
        original(self)  # half a workbook is on disk...
        raise OSError(errno.ENOSPC, NO_SPACE, self.filename)  # ...when the disk fills

    monkeypatch.setattr(xlsxwriter.workbook.Workbook, "_store_workbook", store_then_fill_the_disk)

    with pytest.raises(LoadError, match=f"Writing Excel .*report.xlsx failed, nothing was published.*{NO_SPACE}"):
        write_excel({"Vendas": sales(50, 2)}, "report.xlsx")

    assert (output_dir / "report.xlsx").read_bytes() == before
    sheet = openpyxl.load_workbook(output_dir / "report.xlsx")["Vendas"]
    assert [row[1] for row in sheet.iter_rows(min_row=2, values_only=True)] == [1] * 5
    assert no_temporaries(output_dir) == []


# -- a real, tiny filesystem ------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path, settings):
    """A 1 MB tmpfs mounted as DW_OUTPUT_DIR; unmounted afterwards."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    mounted = shutil.which("mount") and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if not mounted or mounted.returncode != 0:
        reason = f"cannot mount a 1 MB tmpfs (needs root): {getattr(mounted, 'stderr', 'no mount command')!s}".strip()
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}; run the suite as root or with CAP_SYS_ADMIN")
        pytest.skip(reason)
    settings.DW_OUTPUT_DIR = mount_point
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def incompressible(n_rows: int, run_no: int) -> pd.DataFrame:
    rng = np.random.default_rng(run_no)
    return pd.DataFrame({"run": np.full(n_rows, run_no), "noise": rng.integers(0, 2**62, n_rows)})


# xlsxwriter leaves its ZipFile open when the disk fills; its __del__ then fails once more.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_really_full_disk_fails_every_writer_clearly_and_keeps_the_previous_outputs(tiny_disk):
    write_parquet(incompressible(1_000, 1), "table.parquet")
    publish_snapshot({"fact": incompressible(1_000, 1)}, "star")
    write_excel({"S": incompressible(100, 1)}, "report.xlsx")
    before = {p: p.read_bytes() for p in (tiny_disk / "table.parquet", tiny_disk / "report.xlsx")}
    version = open_snapshot("star").version
    big = incompressible(150_000, 2)  # ~2.4 MB of random integers: more than twice the disk

    with pytest.raises(LoadError, match=rf"Writing Parquet .*table\.parquet failed, nothing was published.*{NO_SPACE}"):
        write_parquet(big, "table.parquet")
    with pytest.raises(
        LoadError, match=rf"Publishing snapshot .*star failed; the previous version is still current.*{NO_SPACE}"
    ):
        publish_snapshot({"fact": big}, "star")
    with pytest.raises(LoadError, match=rf"Writing Excel .*report\.xlsx failed, nothing was published.*{NO_SPACE}"):
        write_excel({"S": big.head(60_000)}, "report.xlsx")

    assert {p: p.read_bytes() for p in before} == before
    assert pd.read_parquet(tiny_disk / "table.parquet")["run"].unique().tolist() == [1]
    assert list_snapshot_versions("star") == [version]
    assert read_snapshot("star", "fact")["run"].unique().tolist() == [1]
    assert no_temporaries(tiny_disk) == []
    # The failed writes gave their space back: a small write still fits.
    assert write_parquet(incompressible(1_000, 3), "after.parquet").n_inserted == 1_000
