"""Dask engine vs the pandas chunked engine: sales by category and the fact build, at two sizes.

Generates orders (fixed seed) as a hive-partitioned Parquet dataset of
``--rows-per-file`` rows per file under a temporary folder (money as
decimal128(14, 2)), for 1,000 products in 20 categories and 100,000
customers. Then, for each size and operation, alternating, each contender in
a fresh subprocess:

* ``pandas``: :class:`PandasEngine` -- the partitions read one after another
  in one process, through ``transforms.sales.sales_by_category`` and
  ``load.parquet.publish_snapshot`` (the project's chunked path);
* ``dask``: :class:`DaskEngine` on a LocalCluster of 2 worker processes x 1
  thread started in that subprocess (start-up time printed apart, not counted).

Operations: ``sales`` = ``sales_by_category`` (products lookup); ``fact`` =
``fact_sales`` of every order written as a snapshot (``fact_sales`` table +
dimensions). Results are compared before any ratio is printed: the sales
tables must be equal frames; for the fact, the row count and the exact sum
of every column of the written files must match.

Memory: the pandas figure is the peak RSS of its subprocess (which did only
that job); the Dask figure is the largest peak RSS of a worker process
(``ru_maxrss`` read by the worker at the end of each task; workers are fresh
for every timing) and the client's peak. Per-worker memory should stay flat
when the data grows 4x, because a task holds one chunk of one partition.

Results go through ``_harness`` (area ``dask``): per size, ``report`` of ``dask sales``
and ``dask fact`` (ours = the Dask engine, peak = its largest worker; baseline
``pandas``; printed as a time ratio, dask / pandas); with two sizes or more,
``report_growth`` of ``dask sales memory`` / ``dask fact memory`` (largest Dask worker)
and ``dask sales memory (pandas engine)`` / ``dask fact memory (pandas engine)``.

Usage::

    python benchmarks/dask_scale.py                       # 10,000,000 and 40,000,000 rows
    python benchmarks/dask_scale.py --rows 2000000        # one size
    python benchmarks/dask_scale.py --quick               # 25,000 and 100,000 rows
    python benchmarks/dask_scale.py --rows 10000000 --rows 20000000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from _harness import Baseline, report, report_growth

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SEED = 20_261_204
N_PRODUCTS, N_CATEGORIES, N_CUSTOMERS = 1_000, 20, 100_000
DEFAULT_SIZES = (10_000_000, 40_000_000)
QUICK_SIZES = (25_000, 100_000)  # two sizes 4x apart: the memory growth is measured too
OPERATIONS = ("sales", "fact")
LABELS = {"sales": "sales_by_category", "fact": "fact build + snapshot"}
ENGINES = ("pandas", "dask")


# -- data -------------------------------------------------------------------------------
def reference_frames() -> dict[str, pd.DataFrame]:
    from transforms._common import decimal_column

    rng = np.random.default_rng(SEED)
    product_ids = np.arange(1, N_PRODUCTS + 1)
    price = rng.integers(500, 500_000, N_PRODUCTS)
    customer_ids = np.arange(1, N_CUSTOMERS + 1)
    return {
        "categories": pd.DataFrame(
            {
                "id": np.arange(1, N_CATEGORIES + 1),
                "nome": [f"Categoria {i:02d}" for i in range(1, N_CATEGORIES + 1)],
            }
        ),
        "products": pd.DataFrame(
            {
                "id": product_ids,
                "nome": [f"Produto {i}" for i in product_ids],
                "categoria_id": rng.integers(1, N_CATEGORIES + 1, N_PRODUCTS),
                "preco": decimal_column(price, 14, 2),
                "custo": decimal_column(price * 6 // 10, 14, 2),
            }
        ),
        "customers": pd.DataFrame(
            {
                "id": customer_ids,
                "nome": [f"Cliente {i}" for i in customer_ids],
                "email": [f"c{i}@example.com" for i in customer_ids],
                "cidade": "Recife",
                "uf": "PE",
            }
        ),
    }


def generate(folder: Path, n_rows: int, rows_per_file: int) -> int:
    """Orders as hive Parquet: ``ano_mes=YYYYMM/part-N.parquet``; returns the number of files."""
    from transforms._common import decimal_column

    rng = np.random.default_rng(SEED + n_rows)
    n_files = max(1, -(-n_rows // rows_per_file))
    start = np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64)
    span_us = 730 * 86_400 * 1_000_000
    for index in range(n_files):
        lo = index * rows_per_file
        n = min(rows_per_file, n_rows - lo)
        cents = rng.integers(100, 1_000_000, n)
        # Files follow time: file i covers its slice of the two years, like a monthly export.
        stamps = start + (lo + np.sort(rng.integers(0, rows_per_file, n))) * (span_us // n_rows)
        frame = pd.DataFrame(
            {
                "id": np.arange(lo + 1, lo + n + 1, dtype=np.int64),
                "cliente_id": rng.integers(1, N_CUSTOMERS + 1, n),
                "produto_id": rng.integers(1, N_PRODUCTS + 1, n),
                "quantidade": rng.integers(1, 10, n),
                "total": decimal_column(cents, 14, 2),
                "custo": decimal_column(cents * rng.integers(40, 95, n) // 100, 14, 2),
                "criado_em": stamps.astype("datetime64[us]"),
            }
        )
        month = pd.Timestamp(int(stamps[0]), unit="us").strftime("%Y%m")
        target = folder / f"ano_mes={month}"
        target.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
        pq.write_table(table, target / f"part-{index:05d}.parquet", row_group_size=131_072)
    return n_files


def _warm_worker() -> None:
    import dw_analytics.engines._tasks  # noqa: F401
    import transforms.star  # noqa: F401

    if os.environ.get("DW_BENCH_ARROW_THREADS"):
        pa.set_cpu_count(int(os.environ["DW_BENCH_ARROW_THREADS"]))
        pa.set_io_thread_count(int(os.environ["DW_BENCH_ARROW_THREADS"]))


# -- one contender, in its own process ---------------------------------------------------------
def child(engine_name: str, operation: str, data: str, out: str, result_file: str) -> None:
    """Run one operation on one engine; write timing, memory and the result summary as JSON."""
    os.environ["DW_OUTPUT_DIR"] = out
    from dw_analytics.engines import PandasEngine, parquet_partitions
    from transforms.star import dim_category, dim_customer, dim_product

    reference = reference_frames()
    parts = parquet_partitions(data, columns=None)
    startup = 0.0
    stack = []
    if engine_name == "dask":
        from dw_analytics.engines.dask import DaskEngine, dask_client

        started = time.perf_counter()
        context = dask_client(n_workers=2, memory_limit="4GiB")
        client = context.__enter__()
        stack.append(context)
        # A long-running cluster has the project imported already: do it before the clock starts.
        client.run(_warm_worker)
        engine = DaskEngine(client)
        startup = time.perf_counter() - started
    else:
        engine = PandasEngine()
    dims = {
        "dim_category": dim_category(reference["categories"]),
        "dim_customer": dim_customer(reference["customers"]),
        "dim_product": dim_product(reference["products"], reference["categories"]),
    }

    def run(partitions: list, folder: str) -> tuple[float, object]:
        started = time.perf_counter()
        if operation == "sales":
            value = engine.sales_by_category(partitions, reference["products"], reference["categories"])
        else:
            facts = engine.fact_sales(partitions, dims)
            value = engine.publish_snapshot({"fact_sales": facts, **dims}, folder)
        return time.perf_counter() - started, value

    # Warm both contenders alike on two partitions (first-call costs of every
    # process -- lazy imports, allocator arenas -- are not what we compare).
    run(parts[:2], "warmup")
    elapsed, value = run(parts, "star")
    self_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before checking
    summary: dict = {}
    if operation == "sales":
        value.to_pickle(result_file + ".pkl")
    else:
        summary = fact_summary(Path(value.version_path), value.tables["fact_sales"]["files"])
    for context in stack:
        context.__exit__(None, None, None)
    reports = engine.reports
    Path(result_file).write_text(
        json.dumps(
            {
                "seconds": elapsed,
                "startup": startup,
                "self_peak_mb": self_peak_mb,
                "worker_peak_mb": max((r.peak_rss_mb for r in reports), default=0.0),
                "workers": sorted({r.worker for r in reports}),
                "partitions": [
                    [f"{Path(r.label).parent.name}/{Path(r.label).stem}", r.n_rows, r.seconds] for r in reports
                ],
                "summary": summary,
            }
        )
    )


def fact_summary(version_path: Path, files: list[str]) -> dict:
    """Row count and the exact sum of every column of the written fact (as strings)."""
    sums: dict[str, object] = {}
    rows = 0
    for relative in files:
        for batch in pq.ParquetFile(version_path / relative).iter_batches(batch_size=1 << 20):
            rows += batch.num_rows
            for name in batch.schema.names:
                value = pc.sum(batch.column(name)).as_py()
                sums[name] = sums.get(name, 0) + (value or 0)
    return {"rows": rows, "sums": {k: str(v) for k, v in sorted(sums.items())}}


def run_child(engine: str, operation: str, data: Path, work: Path) -> dict:
    out = work / f"out-{engine}-{operation}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    result_file = work / f"result-{engine}-{operation}.json"
    subprocess.run(
        [sys.executable, __file__, "--child", engine, operation, str(data), str(out), str(result_file)],
        check=True,
    )
    result = json.loads(result_file.read_text())
    if operation == "sales":
        result["frame"] = pd.read_pickle(str(result_file) + ".pkl")
    shutil.rmtree(out, ignore_errors=True)
    return result


def warm_cache(folder: Path) -> None:
    for path in folder.rglob("*.parquet"):
        with open(path, "rb") as handle:
            while handle.read(1 << 24):
                pass


# -- driver -------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, action="append", help="orders (repeatable)")
    parser.add_argument("--quick", action="store_true", help="25,000 and 100,000 rows")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows-per-file", type=int, default=500_000)
    parser.add_argument("--operation", choices=OPERATIONS, action="append")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    sizes = list(QUICK_SIZES) if args.quick else (args.rows or list(DEFAULT_SIZES))
    rows_per_file = min(args.rows_per_file, max(10_000, min(sizes) // 8))
    operations = args.operation or list(OPERATIONS)
    peaks: dict[tuple[str, str], list[float]] = {}
    medians: dict[tuple[str, str], list[float]] = {}
    print(f"# machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; dask: 2 workers x 1 thread")
    with tempfile.TemporaryDirectory(prefix="dw_dask_scale_") as tmp:
        work = Path(tmp)
        for n_rows in sizes:
            data = work / f"orders-{n_rows}"
            started = time.perf_counter()
            n_files = generate(data, n_rows, rows_per_file)
            print(
                f"# {n_rows:,} rows: {n_files} Parquet files of <= {rows_per_file:,} rows, "
                f"generated in {time.perf_counter() - started:.1f} s"
            )
            warm_cache(data)
            for operation in operations:
                runs: dict[str, list[dict]] = {e: [] for e in ENGINES}
                for _ in range(args.repeat):
                    for engine in ENGINES:  # alternate the contenders
                        runs[engine].append(run_child(engine, operation, data, work))
                check_equal(operation, runs)
                report_operation(operation, n_rows, runs)
                for engine in ENGINES:
                    key = "self_peak_mb" if engine == "pandas" else "worker_peak_mb"
                    peaks.setdefault((operation, engine), []).append(max(r[key] for r in runs[engine]))
                    medians.setdefault((operation, engine), []).append(
                        statistics.median(r["seconds"] for r in runs[engine])
                    )
            shutil.rmtree(data)
    if len(sizes) > 1:
        for (operation, engine), values in peaks.items():
            dask = engine == "dask"
            report_growth(
                "dask",
                f"dask {operation} memory" + ("" if dask else " (pandas engine)"),
                rows=sizes,
                seconds=medians[(operation, engine)],
                peak_mb=values,
                label=f"{LABELS[operation]} growth, "
                + ("dask engine (peak RSS of the largest worker)" if dask else "pandas engine"),
                note=" (goal: per-worker peak RSS <= 1.2x)" if dask else "",
                extra={"engine": engine, "peak": "largest dask worker" if dask else "pandas engine process"},
            )


def check_equal(operation: str, runs: dict[str, list[dict]]) -> None:
    first = runs["pandas"][0]
    for run in runs["pandas"] + runs["dask"]:
        if operation == "sales":
            pd.testing.assert_frame_equal(run["frame"], first["frame"])
        elif run["summary"] != first["summary"]:
            raise AssertionError(f"fact differs: {run['summary']} != {first['summary']}")


def report_operation(operation: str, n_rows: int, runs: dict[str, list[dict]]) -> None:
    """Report the Dask engine against the pandas engine (time ratio), then the per-partition times."""
    dask_runs, pandas_runs = runs["dask"], runs["pandas"]
    client_peak = max(r["self_peak_mb"] for r in dask_runs)
    startup = statistics.median(r["startup"] for r in dask_runs)
    report(
        "dask",
        f"dask {operation}",
        rows=n_rows,
        label=f"{LABELS[operation]} {n_rows:,} rows",
        ours_label="dask",
        ours_s=[r["seconds"] for r in dask_runs],
        peak_mb=max(r["worker_peak_mb"] for r in dask_runs),
        baselines={
            "pandas": Baseline(
                [r["seconds"] for r in pandas_runs],
                peak_mb=max(r["self_peak_mb"] for r in pandas_runs),
                label="pandas engine",
            )
        },
        ratio="time",
        note=f" (largest dask worker; dask client {client_peak:.0f} MB); cluster start {startup:.1f} s (not counted)",
        extra={"ours_peak": "largest dask worker", "dask_client_peak_mb": client_peak, "cluster_start_s": startup},
    )
    last = dask_runs[-1]
    pandas_seconds = [s for _, _, s in pandas_runs[-1]["partitions"]]
    per_part = ", ".join(f"{name} {seconds:.2f}s" for name, _, seconds in last["partitions"])
    seconds = [s for _, _, s in last["partitions"]]
    print(
        f"  per-partition times (dask, last run, {len(seconds)} partitions on "
        f"{len(last['workers'])} workers: median {statistics.median(seconds):.2f} s, "
        f"max {max(seconds):.2f} s; pandas engine median {statistics.median(pandas_seconds):.2f} s): "
        f"{per_part}"
    )


if __name__ == "__main__":
    main()
