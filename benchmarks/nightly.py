"""The nightly refresh at scale: full refresh time per step and peak RSS, and an incremental night.

For each backend (SQLite file, PostgreSQL) and each size, a fresh database is
filled with generated orders, then in separate processes (so each peak RSS
belongs to that run alone):

* the full refresh (``run_pipeline nightly --param mode=full``), repeated;
* an incremental night after 1% new orders, repeated (each time 1% more).

Printed: median time (min, max) and peak RSS per size, the time of each step,
and the goals of the nightly issue: time 10M / 1M <= 11x, peak RSS at 10M
<= 1.5x that at 1M, incremental night <= 10% of the full refresh.

    python benchmarks/nightly.py                 # 1M and 10M, SQLite and PostgreSQL
    python benchmarks/nightly.py --quick         # 30k and 100k, one timing each: a smoke run
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

from _children import child_env, drop_database, fresh_database, manage, nightly_log, run_child
from _harness import Baseline, report, report_growth

PG_BENCH_DB = f"dw_bench_nightly_{os.getpid()}"  # per run: two runs at once must not share it

ADD_ORDERS = """
import sys, datetime as dt, django
django.setup()
import numpy as np, pandas as pd
from django.db import transaction
from django.utils import timezone
from dw_analytics.load.models import write_model
from dw_analytics.sales.models import Pedido
from dw_analytics.sales.demo import demo_data
n = int(sys.argv[1])
last = Pedido.objects.order_by("-id").values_list("id", flat=True).first()
new = demo_data(n, seed=last, end=timezone.localdate()).pedidos
# Recent orders, recorded an hour ago (older than the watermark lag).
stamp = pd.Timestamp(timezone.now() - dt.timedelta(hours=1)).as_unit("us")
new = new.assign(id=np.arange(last + 1, last + 1 + n), criado_em=stamp, atualizado_em=stamp)
new["cliente_id"] = (new["cliente_id"] - 1) % 100 + 1
new["produto_id"] = (new["produto_id"] - 1) % 60 + 1
with transaction.atomic():
    write_model(new, Pedido, mode="append")
"""


def bench_size(backend: str, rows: int, repeat: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="dw-bench-nightly-") as tmp:
        try:
            return _bench_size(backend, rows, repeat, Path(tmp))
        finally:
            drop_database(backend, PG_BENCH_DB)


def _bench_size(backend: str, rows: int, repeat: int, folder: Path) -> dict:
    env = child_env(fresh_database(backend, folder, PG_BENCH_DB), folder)
    run_child(manage("migrate", "-v", "0"), env)
    _, gen_s, _, _ = run_child(manage("generate_demo_data", "--orders", str(rows), "--seed", "1"), env)
    fulls, peaks, steps = [], [], []
    for _ in range(repeat):
        seconds, peak, log = nightly_log(env, "mode=full")
        fulls.append(log["duration_s"])
        peaks.append(peak)
        steps.append({s["name"]: s["duration_s"] for s in log["steps"]})
    increments = []
    for _ in range(repeat):
        run_child([sys.executable, "-c", ADD_ORDERS, str(max(rows // 100, 1))], env)
        seconds, peak, log = nightly_log(env)
        assert log["n_inserted"] >= rows // 100, log
        increments.append(log["duration_s"])
    step_median = {name: statistics.median(s[name] for s in steps) for name in steps[0]}
    return {
        "rows": rows,
        "generate_s": gen_s,
        "full": fulls,
        "peak": peaks,
        "steps": step_median,
        "incremental": increments,
    }


def report_backend(backend: str, results: list[dict]) -> None:
    """Print and record the full refresh, the incremental night and the growth of one backend."""
    for r in results:
        full_peak = statistics.median(r["peak"])
        report(
            "nightly",
            f"nightly full {backend}",
            rows=r["rows"],
            label=f"nightly {backend} {r['rows']:,} orders: full refresh",
            ours_s=r["full"],
            peak_mb=full_peak,
            note=f"; demo data generated in {r['generate_s']:.1f} s",
            extra={"steps_s": r["steps"], "generate_s": r["generate_s"]},
        )
        print("  steps: " + ", ".join(f"{name} {s:.2f} s" for name, s in r["steps"].items()), flush=True)
        report(
            "nightly",
            f"nightly incremental {backend}",
            rows=r["rows"],
            label=f"nightly {backend} {r['rows']:,} orders: incremental night (+1% orders)",
            ours_s=r["incremental"],
            baselines={"full": Baseline(r["full"], peak_mb=full_peak, label="full refresh")},
            ratio="time",
            note=" (goal <= 0.10x)",
        )
    if len(results) > 1:
        report_growth(
            "nightly",
            f"nightly full {backend}",
            rows=[r["rows"] for r in results],
            seconds=[statistics.median(r["full"]) for r in results],
            peak_mb=[statistics.median(r["peak"]) for r in results],
            label=f"nightly {backend} full refresh growth",
            note=" (goals: time <= 1.1x the rows growth, peak RSS <= 1.5x)",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000000,10000000", help="comma-separated order counts")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="30k and 100k orders, one timing each (CI smoke run)")
    args = parser.parse_args()
    sizes = [30_000, 100_000] if args.quick else [int(r) for r in args.rows.split(",")]
    if args.quick:
        args.repeat = 1
    print(f"# nightly benchmark on {platform.node()} ({os.cpu_count()} cores), Python {platform.python_version()}")
    for backend in args.backends.split(","):
        results = [bench_size(backend, rows, args.repeat) for rows in sizes]
        report_backend(backend, results)


if __name__ == "__main__":
    main()
