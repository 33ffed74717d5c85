"""write_parquet vs ``df.to_parquet`` and vs pyarrow's ``pq.write_table``.

Generates an orders table once (fixed seed: ids, a low-cardinality category,
a high-cardinality customer name, quantities, money as decimal128(14, 2),
naive microsecond timestamps, dates, a float margin) and stores it as an
Arrow IPC file in a temporary folder. Then, alternating, each contender runs
in its own fresh subprocess that loads the same DataFrame and times only the
write:

* ours: ``dw_analytics.write_parquet(df, path)`` (types normalized for Power
  BI, dictionary choice, metadata, atomic publish);
* ``df.to_parquet(path)`` (pandas defaults, pyarrow engine);
* pyarrow: ``pq.write_table(pa.Table.from_pandas(df), path)``.

Peak RSS is that subprocess's ``ru_maxrss`` read with ``os.wait4`` (it
includes the loaded DataFrame, the same for all three). The parent never
holds the data (generation and checks run in helper processes) because Linux
carries a parent's high-water mark into its children's ``ru_maxrss``.

Before printing ratios the three files are read back and compared: the
baselines' tables, cast to our schema, must equal ours exactly (money to the
cent).

Streaming: ``write_parquet`` over a generator of chunks (up to 100,000 rows,
at least four chunks per run) at two
sizes (a quarter of ``--rows`` and ``--rows``), each in its own subprocess;
the growth factor of peak RSS shows memory stays flat.

Usage::

    python benchmarks/load_parquet.py                # 1,000,000 rows
    python benchmarks/load_parquet.py --rows 200000
    python benchmarks/load_parquet.py --quick        # 100,000 rows
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
import pyarrow.parquet as pq
from _harness import Baseline, report, report_growth

from transforms.money import scaled_to_decimal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SEED = 20_260_115
CHUNK_ROWS = 100_000
REPEATS = 3
CONTENDERS = ("ours", "to_parquet", "pyarrow")
CATEGORIES = [f"Categoria {i:02d}" for i in range(20)]


def make_table(n_rows: int, seed: int, first_id: int = 0) -> pa.Table:
    """Deterministic orders; money built from integer cents (exact, no floats)."""
    rng = np.random.default_rng(seed)
    cents = rng.integers(100, 10_000_000, n_rows)
    cost_cents = (cents * rng.uniform(0.4, 0.9, n_rows)).astype(np.int64)
    seconds = rng.integers(0, 3 * 365 * 86_400, n_rows)
    created = np.datetime64("2024-01-01T00:00:00", "us") + seconds.astype("timedelta64[s]")
    return pa.table(
        {
            "id": pa.array(np.arange(first_id, first_id + n_rows, dtype=np.int64)),
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


def worker(mode: str, source: str, out: str, rows: int, chunk_rows: int) -> None:
    os.environ["DW_OUTPUT_DIR"] = str(Path(out).parent)
    from dw_analytics.load.parquet import write_parquet

    if mode == "stream":

        def chunks():
            for k, start in enumerate(range(0, rows, chunk_rows)):
                yield to_frame(make_table(min(chunk_rows, rows - start), SEED + k, start))

        started = time.perf_counter()
        written = write_parquet(chunks(), out).n_inserted
    else:
        df = to_frame(pa.ipc.open_file(source).read_all())
        started = time.perf_counter()
        if mode == "ours":
            written = write_parquet(df, out).n_inserted
        elif mode == "to_parquet":
            df.to_parquet(out)
            written = len(df)
        else:
            pq.write_table(pa.Table.from_pandas(df, preserve_index=False), out)
            written = len(df)
    print(json.dumps({"seconds": time.perf_counter() - started, "rows": written}))


def run_worker(mode: str, source: Path, out: Path, rows: int, chunk_rows: int = CHUNK_ROWS) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one contender in a fresh process."""
    cmd = [sys.executable, __file__, "--worker", mode, str(source), str(out), "--rows", str(rows)]
    cmd += ["--chunk-rows", str(chunk_rows)]
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not all children's
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{mode} worker failed:\n{stderr}")
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["rows"] == rows, report
    return report["seconds"], usage.ru_maxrss / 1024


def helper(arguments: list[str]) -> None:
    """Run this script in a child process for a job the parent must not do itself."""
    subprocess.run([sys.executable, __file__, *arguments], check=True)


def check_equal(ours: Path, other: Path, name: str) -> None:
    mine = pq.read_table(ours)
    theirs = pq.read_table(other).replace_schema_metadata(None).cast(mine.schema)
    if not theirs.equals(mine):
        raise AssertionError(f"{name} output differs from ours")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    parser.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS, help=argparse.SUPPRESS)
    parser.add_argument("--generate", metavar="SOURCE", help=argparse.SUPPRESS)
    parser.add_argument("--check", nargs=3, metavar=("OURS", "TO_PARQUET", "PYARROW"), help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs=3, metavar=("MODE", "SOURCE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    rows = 100_000 if args.quick else args.rows
    if args.worker:
        worker(*args.worker, rows=rows, chunk_rows=args.chunk_rows)
        return
    if args.generate:
        with pa.ipc.new_file(args.generate, make_table(1, SEED).schema) as sink:
            sink.write_table(make_table(rows, SEED))
        return
    if args.check:
        ours, to_parquet, pyarrow_file = (Path(p) for p in args.check)
        check_equal(ours, to_parquet, "df.to_parquet")
        check_equal(ours, pyarrow_file, "pyarrow")
        return

    with tempfile.TemporaryDirectory(prefix="bench_parquet_") as tmp:
        folder = Path(tmp)
        source = folder / "orders.arrow"
        # This process stays small: a child's ru_maxrss starts at its parent's
        # peak (Linux copies the high-water mark across fork/exec), so data
        # generation and result checks run in helper processes too.
        helper([f"--generate={source}", "--rows", str(rows)])
        source.read_bytes()  # warm the page cache once for every contender
        out = {name: folder / f"{name}.parquet" for name in CONTENDERS}
        times: dict[str, list[float]] = {name: [] for name in CONTENDERS}
        peaks: dict[str, float] = {}
        for _ in range(REPEATS):
            for name in CONTENDERS:
                seconds, peak = run_worker(name, source, out[name], rows)
                times[name].append(seconds)
                peaks[name] = max(peaks.get(name, 0.0), peak)
        helper(["--check", *(str(out[name]) for name in CONTENDERS)])

        size_mb = {name: out[name].stat().st_size / 2**20 for name in CONTENDERS}
        report(
            "load_parquet",
            "write_parquet",
            rows=rows,
            ours_s=times["ours"],
            peak_mb=peaks["ours"],
            baselines={
                "to_parquet": Baseline(times["to_parquet"], peak_mb=peaks["to_parquet"], label="df.to_parquet"),
                "pyarrow": Baseline(times["pyarrow"], peak_mb=peaks["pyarrow"], label="pyarrow write_table"),
            },
            note=(
                f"; file {size_mb['ours']:.1f} MB vs {size_mb['to_parquet']:.1f} MB / "
                f"{size_mb['pyarrow']:.1f} MB; same table"
            ),
            extra={"file_mb": {name: round(size, 2) for name, size in size_mb.items()}},
        )

        small = rows // 4
        # At least 4 chunks even in the smaller run, so both runs really stream.
        chunk_rows = max(1, min(CHUNK_ROWS, small // 4))
        stream_peaks = {}
        stream_times = {}
        for n in (small, rows):
            seconds, peak = run_worker("stream", source, folder / f"stream_{n}.parquet", n, chunk_rows)
            stream_peaks[n], stream_times[n] = peak, seconds
            assert pq.ParquetFile(folder / f"stream_{n}.parquet").metadata.num_rows == n
        report_growth(
            "load_parquet",
            "write_parquet streaming",
            rows=[small, rows],
            seconds=[stream_times[small], stream_times[rows]],
            peak_mb=[stream_peaks[small], stream_peaks[rows]],
            label=f"write_parquet streaming {chunk_rows:,}-row chunks",
            extra={"chunk_rows": chunk_rows, "single_timing": True},
        )


if __name__ == "__main__":
    main()
