"""write_excel vs ``df.to_excel`` (openpyxl engine) at two sizes.

Generates an orders table once (fixed seed: ids, category, customer name,
quantity, money as decimal128(14, 2), naive timestamps with whole seconds,
dates, a float margin) and stores it as an Arrow IPC file in a temporary
folder. For each size (a quarter of ``--rows`` and ``--rows``) the two
contenders run alternating, ``REPEATS`` times, each in its own fresh
subprocess that loads the same DataFrame and times only the write:

* ours: ``dw_analytics.write_excel({"Vendas": df}, path)`` with its automatic
  mode choice (a formatted table up to 100,000 rows, constant-memory streaming
  with an autofilter above);
* ``df.to_excel(path, sheet_name="Vendas", index=False)`` with openpyxl, the
  pandas default for .xlsx.

Peak RSS is that subprocess's ``ru_maxrss`` read with ``os.wait4`` (the
loaded DataFrame included, the same for both). The parent never holds the
data (generation and checks run in helper processes) because Linux carries a
parent's high-water mark into its children's ``ru_maxrss``.

Before printing, both workbooks are read back with python-calamine and
compared: every cell equal, money to the cent, timestamps to the millisecond
(Excel stores them as fractional days).

Usage::

    python benchmarks/load_excel.py                # 50,000 and 200,000 rows
    python benchmarks/load_excel.py --rows 100000
    python benchmarks/load_excel.py --quick        # 25,000 and 100,000 rows
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from _harness import Baseline, report, report_growth

from transforms.money import scaled_to_decimal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SEED = 20_260_116
REPEATS = 3
CONTENDERS = ("ours", "to_excel")
CATEGORIES = [f"Categoria {i:02d}" for i in range(20)]
SHEET = "Vendas"


def make_table(n_rows: int, seed: int) -> pa.Table:
    """Deterministic orders; money built from integer cents (exact, no floats)."""
    rng = np.random.default_rng(seed)
    cents = rng.integers(100, 10_000_000, n_rows)
    cost_cents = (cents * rng.uniform(0.4, 0.9, n_rows)).astype(np.int64)
    seconds = rng.integers(0, 3 * 365 * 86_400, n_rows)
    created = np.datetime64("2024-01-01T00:00:00", "us") + seconds.astype("timedelta64[s]")
    return pa.table(
        {
            "id": pa.array(np.arange(n_rows, dtype=np.int64)),
            "categoria": pa.array(np.array(CATEGORIES)[rng.integers(0, len(CATEGORIES), n_rows)]),
            "cliente": pa.array(np.char.add("Cliente ", rng.integers(0, 100_000, n_rows).astype(str))),
            "quantidade": pa.array(rng.integers(1, 50, n_rows).astype(np.int32)),
            "total": pa.array(scaled_to_decimal(cents)),
            "custo": pa.array(scaled_to_decimal(cost_cents)),
            "criado_em": pa.array(created, pa.timestamp("us")),
            "data": pa.array(created.astype("datetime64[D]"), pa.date32()),
            "margem": pa.array(1 - cost_cents / cents),
        }
    )


def to_frame(table: pa.Table) -> pd.DataFrame:
    """What a pipeline hands the loader: exact decimals, pandas strings and datetimes."""
    return table.to_pandas(types_mapper=lambda t: pd.ArrowDtype(t) if pa.types.is_decimal(t) else None)


# ----------------------------------------------------------------- workers


def worker(mode: str, source: str, out: str, rows: int) -> None:
    os.environ["DW_OUTPUT_DIR"] = str(Path(out).parent)
    from dw_analytics.load.excel import write_excel

    df = to_frame(pa.ipc.open_file(source).read_all().slice(0, rows))
    started = time.perf_counter()
    if mode == "ours":
        result = write_excel({SHEET: df}, out)
        detail = "streaming" if result.streaming else "table"
    else:
        df.to_excel(out, sheet_name=SHEET, index=False, engine="openpyxl")
        detail = "openpyxl"
    print(json.dumps({"seconds": time.perf_counter() - started, "mode": detail}))


def run_worker(mode: str, source: Path, out: Path, rows: int) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, mode) of one contender in a fresh process."""
    cmd = [sys.executable, __file__, "--worker", mode, str(source), str(out), "--rows", str(rows)]
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not all children's
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{mode} worker failed:\n{stderr}")
    report = json.loads(stdout.strip().splitlines()[-1])
    return report["seconds"], usage.ru_maxrss / 1024, report["mode"]


def helper(arguments: list[str]) -> None:
    """Run this script in a child process for a job the parent must not do itself."""
    subprocess.run([sys.executable, __file__, *arguments], check=True)


def check_equal(ours: Path, theirs: Path, source: pa.Table) -> None:
    """Both workbooks hold the source's values (money to the cent)."""
    expected = to_frame(source)
    for path in (ours, theirs):
        got = pd.read_excel(path, sheet_name=SHEET, engine="calamine")
        assert list(got.columns) == list(expected.columns), path
        assert len(got) == len(expected), path
        for name in ("id", "quantidade"):
            assert np.array_equal(got[name].to_numpy(dtype=np.int64), expected[name].to_numpy()), name
        for name in ("categoria", "cliente"):
            assert got[name].tolist() == expected[name].tolist(), name
        for name in ("total", "custo"):
            # Cents below 1e13 survive the double exactly: compare integer cents.
            cents = np.rint(got[name].to_numpy(dtype=float) * 100).astype(np.int64)
            want = np.rint(
                pa.array(expected[name].array).cast(pa.float64()).to_numpy(zero_copy_only=False) * 100
            ).astype(np.int64)
            assert np.array_equal(cents, want), name
        # Both writers store doubles with 16 significant digits (Excel keeps 15).
        assert np.allclose(got["margem"], expected["margem"], rtol=1e-15, atol=0), path
        created = pd.to_datetime(got["criado_em"]).to_numpy(dtype="datetime64[ms]")
        want_created = expected["criado_em"].to_numpy(dtype="datetime64[ms]")
        assert np.abs(created - want_created).max() <= np.timedelta64(1, "ms"), path
        dates = pd.to_datetime(got["data"]).to_numpy(dtype="datetime64[D]")
        assert np.array_equal(dates, pd.to_datetime(expected["data"]).to_numpy(dtype="datetime64[D]")), path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    parser.add_argument("--generate", metavar="SOURCE", help=argparse.SUPPRESS)
    parser.add_argument("--check", nargs=3, metavar=("OURS", "TO_EXCEL", "SOURCE"), help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs=3, metavar=("MODE", "SOURCE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    rows = 100_000 if args.quick else args.rows
    if args.worker:
        worker(*args.worker, rows=rows)
        return
    if args.generate:
        table = make_table(rows, SEED)
        with pa.ipc.new_file(args.generate, table.schema) as sink:
            sink.write_table(table)
        return
    if args.check:
        ours, theirs, source = args.check
        check_equal(Path(ours), Path(theirs), pa.ipc.open_file(source).read_all().slice(0, rows))
        return

    with tempfile.TemporaryDirectory(prefix="bench_excel_") as tmp:
        folder = Path(tmp)
        source = folder / "orders.arrow"
        # This process stays small: a child's ru_maxrss starts at its parent's
        # peak (Linux copies the high-water mark across fork/exec), so data
        # generation and result checks run in helper processes too.
        helper([f"--generate={source}", "--rows", str(rows)])
        source.read_bytes()  # warm the page cache once for every contender
        peaks_by_size: dict[int, dict[str, float]] = {}
        for n in (max(1, rows // 4), rows):
            out = {name: folder / f"{name}_{n}.xlsx" for name in CONTENDERS}
            times: dict[str, list[float]] = {name: [] for name in CONTENDERS}
            peaks: dict[str, float] = {}
            modes: dict[str, str] = {}
            for _ in range(REPEATS):
                for name in CONTENDERS:
                    seconds, peak, mode = run_worker(name, source, out[name], n)
                    times[name].append(seconds)
                    peaks[name] = max(peaks.get(name, 0.0), peak)
                    modes[name] = mode
            helper(["--check", str(out["ours"]), str(out["to_excel"]), str(source), "--rows", str(n)])
            peaks_by_size[n] = peaks
            report(
                "load_excel",
                "write_excel",
                rows=n,
                label=f"write_excel {n:,} rows ({modes['ours']} mode)",
                ours_s=times["ours"],
                peak_mb=peaks["ours"],
                baselines={
                    "to_excel": Baseline(times["to_excel"], peak_mb=peaks["to_excel"], label="df.to_excel openpyxl")
                },
                note=(
                    f"; file {out['ours'].stat().st_size / 2**20:.1f} MB vs "
                    f"{out['to_excel'].stat().st_size / 2**20:.1f} MB; same cells"
                ),
                extra={"mode": modes["ours"]},
            )
        small, big = sorted(peaks_by_size)
        for name, label in (("ours", "ours"), ("to_excel", "df.to_excel")):
            report_growth(
                "load_excel",
                f"write_excel memory {name}",
                rows=[small, big],
                peak_mb=[peaks_by_size[small][name], peaks_by_size[big][name]],
                label=f"write_excel peak RSS growth, {label},",
            )


if __name__ == "__main__":
    main()
