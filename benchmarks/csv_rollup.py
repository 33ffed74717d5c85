"""Benchmark: stream a big sales CSV and compute sales by category.

Contenders, each timed in its own subprocess (peak RSS from ``os.wait4``):

- ``ours``: ``dw.read_csv_chunks`` (money read exactly as ``decimal128(18, 2)``,
  250,000-row chunks) piped into ``transforms.rollup``;
- ``duckdb``: ``read_csv`` + ``GROUP BY`` in DuckDB SQL (money typed
  ``DECIMAL(18, 2)``), the baseline to beat;
- ``pandas``: ``pd.read_csv(chunksize=1_000_000)`` with per-chunk ``groupby``
  combined at the end (money as float64, rounded to cents at the end);
- ``pandas_whole``: ``pd.read_csv`` of the whole file at once, then one
  ``groupby`` (money as float64, rounded to cents at the end), the way the
  seed reads a CSV.

The script checks that every contender returns the same counts and the same
sums to the cent before it prints ratios. Data is generated once (fixed seed)
in a temporary folder and removed at the end.

Usage::

    .venv/bin/python benchmarks/csv_rollup.py            # 10,000,000 rows (~700 MB)
    .venv/bin/python benchmarks/csv_rollup.py --quick    # 100,000 rows
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from _harness import Baseline, report, report_growth

ROOT = Path(__file__).resolve().parents[1]
CATEGORIES = [
    "Eletrônicos",
    "Livros",
    "Casa e Jardim",
    "Esportes",
    "Brinquedos",
    "Moda",
    "Beleza",
    "Alimentos",
    "Informática",
    "Automotivo",
]
CHANNELS = ["loja", "online", "app", "marketplace"]
HEADER = "id,data,categoria,produto_id,cliente_id,canal,quantidade,total,custo\n"
CONTENDERS = {
    "ours": "read_csv_chunks+rollup",
    "duckdb": "DuckDB read_csv+GROUP BY",
    "pandas": "pandas read_csv(chunksize)",
    "pandas_whole": "pandas read_csv whole file",
}


# --- data ---------------------------------------------------------------------


def generate_sales_csv(path: Path, rows: int, seed: int = 20240101) -> None:
    """Write a deterministic sales CSV with 2-decimal money columns."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pv

    def money(cents: np.ndarray) -> pa.Array:
        text = pc.utf8_lpad(pc.cast(pa.array(cents), pa.string()), 3, "0")
        units = pc.utf8_slice_codeunits(text, 0, -2)
        return pc.binary_join_element_wise(units, pc.utf8_slice_codeunits(text, -2, 99), ".")

    rng = np.random.default_rng(seed)
    categories = np.array(CATEGORIES)
    channels = np.array(CHANNELS)
    with path.open("wb") as out:
        out.write(HEADER.encode())
        for start in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - start)
            days = rng.integers(0, 1096, n)
            dates = (np.datetime64("2022-01-01") + days).astype("datetime64[s]")
            quantity = rng.integers(1, 10, n)
            price_cents = rng.integers(100, 500_000, n)
            total_cents = quantity * price_cents
            cost_cents = total_cents * rng.integers(40, 90, n) // 100
            table = pa.table(
                {
                    "id": np.arange(start + 1, start + n + 1),
                    "data": pc.strftime(pa.array(dates), "%Y-%m-%d"),
                    "categoria": categories[rng.integers(0, len(categories), n)],
                    "produto_id": rng.integers(1, 50_000, n),
                    "cliente_id": rng.integers(1, 1_000_000, n),
                    "canal": channels[rng.integers(0, len(channels), n)],
                    "quantidade": quantity,
                    "total": money(total_cents),
                    "custo": money(cost_cents),
                }
            )
            pv.write_csv(
                table,
                out,
                write_options=pv.WriteOptions(include_header=False, quoting_style="none"),
            )


# --- contenders (each runs in a fresh subprocess) -----------------------------


def run_ours(path: str) -> dict[str, list]:
    import dw_analytics as dw
    from transforms.rollup import rollup

    chunks = dw.read_csv_chunks(
        path,
        usecols=["categoria", "total", "custo"],
        decimals={"total": 2, "custo": 2},
        chunksize=250_000,  # 1,000,000-row chunks would cost ~60 MB more peak RSS
    )
    result = rollup(
        chunks,
        by="categoria",
        vendas=("total", "size"),
        receita=("total", "sum"),
        custo=("custo", "sum"),
    )
    assert chunks.n_errors == 0, chunks.quarantine.head()
    return {
        str(row.categoria): [int(row.vendas), str(row.receita), str(row.custo)]
        for row in result.itertuples(index=False)
    }


def run_duckdb(path: str) -> dict[str, list]:
    import duckdb

    rows = duckdb.sql(
        f"""
        SELECT categoria, count(*) AS vendas, sum(total) AS receita, sum(custo) AS custo
        FROM read_csv('{path}', header = true,
                      types = {{'total': 'DECIMAL(18,2)', 'custo': 'DECIMAL(18,2)'}})
        GROUP BY categoria ORDER BY categoria
        """
    ).fetchall()
    return {cat: [int(n), str(receita), str(custo)] for cat, n, receita, custo in rows}


PANDAS_COLUMNS = ["categoria", "total", "custo"]


def _pandas_rollup(frame):
    return frame.groupby("categoria").agg(vendas=("total", "size"), receita=("total", "sum"), custo=("custo", "sum"))


def _pandas_answer(result) -> dict[str, list]:
    return {
        cat: [int(row.vendas), f"{row.receita:.2f}", f"{row.custo:.2f}"]
        for cat, row in result.iterrows()  # one row per category, not per sale
    }


def run_pandas(path: str) -> dict[str, list]:
    import pandas as pd

    partials = []
    reader = pd.read_csv(path, usecols=PANDAS_COLUMNS, chunksize=1_000_000)
    for chunk in reader:
        partials.append(_pandas_rollup(chunk))
    return _pandas_answer(pd.concat(partials).groupby(level=0).sum())


def run_pandas_whole(path: str) -> dict[str, list]:
    import pandas as pd

    return _pandas_answer(_pandas_rollup(pd.read_csv(path, usecols=PANDAS_COLUMNS)))


RUNNERS = {"ours": run_ours, "duckdb": run_duckdb, "pandas": run_pandas, "pandas_whole": run_pandas_whole}


PRELOAD = {
    "ours": ["pandas", "pyarrow.csv", "dw_analytics.extract.csv", "transforms.rollup"],
    "duckdb": ["duckdb"],
    "pandas": ["pandas"],
    "pandas_whole": ["pandas"],
}


def worker(name: str, path: str, out: str) -> None:
    # Imports are not what we measure: load them before the clock starts.
    sys.path.insert(0, str(ROOT))
    for module in PRELOAD[name]:
        importlib.import_module(module)
    started = time.perf_counter()
    result = RUNNERS[name](path)
    elapsed = time.perf_counter() - started
    Path(out).write_text(json.dumps({"seconds": elapsed, "result": result}))


def run_contender(name: str, path: Path, workdir: Path) -> tuple[float, float, dict]:
    """Run one contender in a fresh process; return (seconds, peak RSS MB, result)."""
    out = workdir / f"{name}.json"
    proc = subprocess.Popen(
        [sys.executable, __file__, "--worker", name, "--path", str(path), "--out", str(out)],
        cwd=ROOT,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{name} failed with exit code {proc.returncode}")
    payload = json.loads(out.read_text())
    return payload["seconds"], usage.ru_maxrss / 1024, payload["result"]


# --- driver -------------------------------------------------------------------


def same_answer(reference: dict, other: dict) -> bool:
    if reference.keys() != other.keys():
        return False
    for category, (n, receita, custo) in reference.items():
        n2, receita2, custo2 = other[category]
        if n != n2 or Decimal(receita) != Decimal(receita2) or Decimal(custo) != Decimal(custo2):
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--worker", choices=sorted(RUNNERS), help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--generate", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.path, args.out)
        return
    if args.generate:
        generate_sales_csv(Path(args.generate), args.rows)
        return
    rows = 100_000 if args.quick else args.rows

    with tempfile.TemporaryDirectory(prefix="dw_csv_rollup_") as tmp:
        workdir = Path(tmp)
        path = workdir / "vendas.csv"
        # Generate in a child process: the parent must stay small, because a
        # child's peak RSS starts from its parent's RSS at fork time.
        subprocess.run([sys.executable, __file__, "--generate", str(path), "--rows", str(rows)], check=True)
        size_mb = path.stat().st_size / 1e6
        with path.open("rb") as f:  # warm the page cache once for every contender
            while f.read(1 << 24):
                pass

        timings: dict[str, list[float]] = {name: [] for name in CONTENDERS}
        peaks: dict[str, float] = dict.fromkeys(CONTENDERS, 0.0)
        answers: list[tuple[str, dict]] = []
        for _ in range(args.repeat):
            for name in CONTENDERS:  # alternate contenders within each round
                seconds, peak, answer = run_contender(name, path, workdir)
                timings[name].append(seconds)
                peaks[name] = max(peaks[name], peak)
                answers.append((name, answer))

        reference = next(answer for name, answer in answers if name == "duckdb")
        for name, answer in answers:
            if not same_answer(reference, answer):
                raise SystemExit(f"{CONTENDERS[name]} disagrees with DuckDB:\n{answer}\n{reference}")

        # Memory must stay flat in the file size: the same job on a tenth of the rows.
        small = workdir / "vendas_small.csv"
        subprocess.run(
            [sys.executable, __file__, "--generate", str(small), "--rows", str(rows // 10)],
            check=True,
        )
        _, small_peak, _ = run_contender("ours", small, workdir)

        report(
            "csv",
            "csv_rollup",
            rows=rows,
            label=f"csv_rollup {rows:,} rows ({size_mb:,.0f} MB)",
            ours_label=CONTENDERS["ours"],
            ours_s=timings["ours"],
            peak_mb=peaks["ours"],
            baselines={
                name: Baseline(timings[name], peak_mb=peaks[name], label=CONTENDERS[name])
                for name in ("duckdb", "pandas", "pandas_whole")
            },
            note="; sums equal to the cent",
            extra={"file_mb": round(size_mb, 1), "sums_equal": True},
        )
        report_growth(
            "csv",
            "csv_rollup memory",
            rows=[rows // 10, rows],
            peak_mb=[small_peak, peaks["ours"]],
            label=f"csv_rollup memory growth ({CONTENDERS['ours']})",
        )


if __name__ == "__main__":
    main()
