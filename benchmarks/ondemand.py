"""Benchmark the on-demand jobs against the plain code a user would write.

On a SQLite file database holding N demo orders (``sales.Pedido``, generated once with a
fixed seed), in a temporary folder that is removed at the end:

* export N orders to Parquet, CSV and Excel: ``export_source`` vs
  ``pd.DataFrame(list(Pedido.objects.values()))`` then ``to_parquet`` / ``to_csv`` /
  ``to_excel`` (time zones dropped to local wall time for Excel, which refuses them);
* corrections of N/10 orders (a CSV: id, quantidade, total; 90% of the rows change):
  dry run — ``plan_corrections`` vs ``in_bulk`` batches and a Python loop comparing each
  row; applied — ``apply_corrections`` (validated, audited, one transaction) vs
  ``get()`` + ``save()`` per row, measured on a 5,000-row sample and extrapolated
  linearly to N/10 (stated on the line);
* sync N rows from MariaDB (a table created in database ``test`` and dropped after):
  ``sync_source`` (upsert by key) vs ``pd.read_sql`` + ``bulk_create(batch_size=1000)``.

Every timed run is its own subprocess on a fresh copy of the database; it reports its
job's wall time and its peak RSS: ``VmHWM`` of ``/proc/self/status`` at exit, the peak
of a process that did only that job. (Not ``ru_maxrss``: Linux carries the parent's
high-water mark at fork into the child's ``ru_maxrss`` across ``execve``, so every child
of a large driver would report the driver's size.) Contenders alternate; the median of ``--repeat`` runs
is reported with min and max. Results are compared before any ratio is reported (file
contents normalised to the same types; table digests; diff counts).

Results go through ``_harness.report`` (area ``ondemand``, baseline key ``baseline``):
``export parquet``, ``export csv``, ``export xlsx``, ``corrections dry-run``,
``corrections applied`` (rows = the corrections, ``extra.of_rows`` = the orders) and
``sync mariadb->sqlite``.

Usage::

    .venv/bin/python benchmarks/ondemand.py              # 1,000,000 orders
    .venv/bin/python benchmarks/ondemand.py --quick      # 100,000
    .venv/bin/python benchmarks/ondemand.py --rows 200000 --repeat 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _harness import Baseline, report

REPO = Path(__file__).resolve().parent.parent
SEED = 20260101
MARIADB_URL = os.environ.get("DW_BENCH_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test")
SAVE_SAMPLE = 5_000


# -- worker side (one job per subprocess) -----------------------------------------------


def _django(db: Path, out: Path) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "dw_analytics.settings"
    os.environ["DATABASE_URL"] = f"sqlite:///{db}"
    os.environ["DW_OUTPUT_DIR"] = str(out)
    os.environ["DW_PROGRESS"] = "0"
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


def _table_digest(sql: str) -> str:
    from django.db import connection

    digest = hashlib.sha256()
    with connection.cursor() as cursor:
        cursor.execute(sql)
        while rows := cursor.fetchmany(50_000):
            digest.update(repr(rows).encode())
    return digest.hexdigest()


def worker(job: dict) -> dict:
    db, out = Path(job["db"]), Path(job["out"])
    _django(db, out)
    name = job["name"]
    result: dict = {}
    if name == "setup":
        from django.core.management import call_command

        from dw_analytics.sales.services import demo_data_create

        call_command("migrate", verbosity=0)
        demo_data_create(orders=job["rows"], seed=SEED, years=2)
        return {}
    started = time.perf_counter()
    if name == "export_ours":
        from dw_analytics.jobs.export import export_source

        export_source("sales.Pedido", job["fmt"], job["path"])
    elif name == "export_baseline":
        import pandas as pd

        from dw_analytics.sales.models import Pedido

        df = pd.DataFrame(list(Pedido.objects.order_by("pk").values()))
        target = out / job["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        if job["fmt"] == "parquet":
            df.to_parquet(target, index=False)
        elif job["fmt"] == "csv":
            df.to_csv(target, index=False)
        else:
            for column in ("criado_em", "atualizado_em"):
                df[column] = df[column].dt.tz_convert("America/Sao_Paulo").dt.tz_localize(None)
            df.to_excel(target, index=False, sheet_name="Pedido")
    elif name == "plan_ours":
        from dw_analytics.jobs.corrections import plan_corrections

        plan = plan_corrections(job["file"], "sales.Pedido", ["id"])
        result = {"n_updated": plan.n_updated, "n_cells": len(plan.updated)}
    elif name == "plan_baseline":
        result = _plan_baseline(job["file"])
    elif name == "apply_ours":
        from dw_analytics.jobs.corrections import apply_corrections

        applied = apply_corrections(job["file"], "sales.Pedido", ["id"])
        result = {"n_updated": applied.n_updated}
    elif name == "apply_baseline":
        result = _save_baseline(job["file"], job["sample"])
    elif name == "sync_ours":
        from dw_analytics.jobs.sync import sync_source

        done = sync_source(job["url"], table=job["table"], to="sales.Destino", key="id_externo", chunksize=50_000)
        result = {"n_inserted": done.n_inserted}
    elif name == "sync_baseline":
        import pandas as pd
        import sqlalchemy as sa

        from dw_analytics.sales.models import Destino

        engine = sa.create_engine(job["url"])
        df = pd.read_sql(f"SELECT id_externo, valor, data FROM {job['table']}", engine)
        Destino.objects.bulk_create([Destino(**r) for r in df.to_dict("records")], batch_size=1000)
        engine.dispose()
    else:
        raise ValueError(name)
    result["seconds"] = time.perf_counter() - started
    if name.startswith(("apply", "sync")):
        table = "sales_pedido" if name.startswith("apply") else "sales_destino"
        columns = "id, quantidade, total" if name.startswith("apply") else "id_externo, valor, data"
        key = "id" if name.startswith("apply") else "id_externo"
        where = f" WHERE id IN ({','.join(map(str, job['sample_ids']))})" if job.get("sample_ids") else ""
        result["digest"] = _table_digest(f"SELECT {columns} FROM {table}{where} ORDER BY {key}")
    return result


def _read_corrections(path: str):
    import csv
    from decimal import Decimal

    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return [(int(r["id"]), int(r["quantidade"]), Decimal(r["total"])) for r in reader]


def _plan_baseline(path: str) -> dict:
    from dw_analytics.sales.models import Pedido

    rows = _read_corrections(path)
    diffs = []
    for start in range(0, len(rows), 10_000):
        batch = rows[start : start + 10_000]
        stored = Pedido.objects.in_bulk([r[0] for r in batch])
        for pk, quantidade, total in batch:
            obj = stored.get(pk)
            if obj is None:
                continue
            if obj.quantidade != quantidade:
                diffs.append((pk, "quantidade", obj.quantidade, quantidade))
            if obj.total != total:
                diffs.append((pk, "total", obj.total, total))
    return {"n_updated": len({d[0] for d in diffs}), "n_cells": len(diffs)}


def _save_baseline(path: str, sample: int) -> dict:
    from django.db import transaction

    from dw_analytics.sales.models import Pedido

    rows = _read_corrections(path)[:sample]
    with transaction.atomic():
        for pk, quantidade, total in rows:
            obj = Pedido.objects.get(pk=pk)
            obj.quantidade = quantidade
            obj.total = total
            obj.save()
    return {"n_updated": len(rows)}


def _peak_rss_kb() -> int:
    """This process's own peak RSS (VmHWM), in KiB; ``ru_maxrss`` where /proc is missing."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# -- driver side -----------------------------------------------------------------------------


def run_job(job: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(job)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=7200,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {job['name']} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fresh_copy(base: Path, folder: Path) -> Path:
    target = folder / f"db-{uuid.uuid4().hex[:8]}.sqlite3"
    shutil.copyfile(base, target)
    return target


def report_job(
    name: str,
    rows: int,
    runs: dict[str, list[dict]],
    baseline: str,
    *,
    scale: float = 1.0,
    label: str | None = None,
    extra: dict | None = None,
) -> None:
    """Report our runs against the baseline's (its seconds times ``scale`` when extrapolated)."""
    report(
        "ondemand",
        name,
        rows=rows,
        label=label,
        ours_s=[r["seconds"] for r in runs["ours"]],
        peak_mb=max(r["peak_mb"] for r in runs["ours"]),
        baselines={
            "baseline": Baseline(
                [r["seconds"] * scale for r in runs["baseline"]],
                peak_mb=max(r["peak_mb"] for r in runs["baseline"]),
                label=baseline,
            )
        },
        extra=extra,
    )


def verify_export(fmt: str, ours: Path, base: Path) -> None:
    """Both files hold the same orders: same ids, exact money, same instants."""
    import pandas as pd

    if fmt == "parquet":
        a, b = pd.read_parquet(ours), pd.read_parquet(base)
        a_when = pd.to_datetime(a["criado_em"]).dt.tz_localize("America/Sao_Paulo").dt.tz_convert("UTC")
        b_when = pd.to_datetime(b["criado_em"]).dt.tz_convert("UTC")
    elif fmt == "csv":
        a, b = pd.read_csv(ours, dtype=str), pd.read_csv(base, dtype=str)
        a_when = pd.to_datetime(a["criado_em"], format="ISO8601", utc=True)
        b_when = pd.to_datetime(b["criado_em"], format="ISO8601", utc=True)
    else:
        a, b = pd.read_excel(ours, engine="calamine"), pd.read_excel(base, engine="calamine")
        a_when, b_when = pd.to_datetime(a["criado_em"]).dt.round("s"), pd.to_datetime(b["criado_em"]).dt.round("s")
    assert len(a) == len(b), (len(a), len(b))
    assert (a["id"].astype("int64").to_numpy() == b["id"].astype("int64").to_numpy()).all()
    for money in ("total", "custo"):
        cents_a = (a[money].astype(str).map(lambda s: round(float(s) * 100))).to_numpy()
        cents_b = (b[money].astype(str).map(lambda s: round(float(s) * 100))).to_numpy()
        assert (cents_a == cents_b).all(), money
    assert (a_when.to_numpy() == b_when.to_numpy()).all()


def make_corrections(db: Path, path: Path, n: int) -> None:
    import sqlite3

    import numpy as np

    rng = np.random.default_rng(SEED)
    with sqlite3.connect(db) as connection:
        total = connection.execute("SELECT COUNT(*) FROM sales_pedido").fetchone()[0]
        ids = np.sort(rng.choice(np.arange(1, total + 1), size=n, replace=False))
        placeholders = ",".join(map(str, ids.tolist()))
        stored = dict(
            connection.execute(f"SELECT id, quantidade FROM sales_pedido WHERE id IN ({placeholders})").fetchall()
        )
    quantidade = np.array([stored[i] for i in ids.tolist()])
    change = rng.random(n) < 0.9
    new_quantidade = np.where(change, quantidade + 1, quantidade)
    cents = rng.integers(100, 500_000, n)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("id,quantidade,total\n")
        for i, q, c in zip(ids.tolist(), new_quantidade.tolist(), cents.tolist(), strict=True):
            handle.write(f"{i},{q},{c // 100}.{c % 100:02d}\n")


def make_mariadb_table(url: str, n: int) -> str:
    import numpy as np
    import sqlalchemy as sa

    rng = np.random.default_rng(SEED)
    table = f"dw_bench_sync_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                f"CREATE TABLE {table} (id_externo VARCHAR(64) PRIMARY KEY, valor DECIMAL(14,2) NOT NULL, data DATE NOT NULL)"
            )
        )
        cents = rng.integers(1, 10_000_000, n)
        days = rng.integers(0, 730, n)
        for start in range(0, n, 20_000):
            stop = min(start + 20_000, n)
            values = ",".join(
                f"('EXT{i:09d}',{cents[i] // 100}.{cents[i] % 100:02d},DATE_ADD('2024-01-01', INTERVAL {days[i]} DAY))"
                for i in range(start, stop)
            )
            connection.execute(sa.text(f"INSERT INTO {table} VALUES {values}"))
    engine.dispose()
    return table


def drop_mariadb_table(url: str, table: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()


def alternate(repeat: int, contenders: dict[str, callable]) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {name: [] for name in contenders}
    for _ in range(repeat):
        for name, start in contenders.items():
            runs[name].append(start())
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=["export", "corrections", "sync"], action="append")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        job = json.loads(args.worker)
        result = worker(job)
        result["peak_mb"] = _peak_rss_kb() / 1024
        print(json.dumps(result))
        return
    # SIGTERM (CI timeouts) runs the cleanup below: the temporary folder, the MariaDB table
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rows = 100_000 if args.quick else args.rows
    parts = args.only or ["export", "corrections", "sync"]
    folder = Path(tempfile.mkdtemp(prefix="dw_bench_ondemand_"))
    out = folder / "out"
    out.mkdir()
    try:
        base = folder / "base.sqlite3"
        print(
            f"# {rows:,} orders, SQLite, median of {args.repeat} (each run a fresh subprocess and database copy)",
            flush=True,
        )
        run_job({"name": "setup", "db": str(base), "out": str(out), "rows": rows})
        if "export" in parts:
            for fmt in ("parquet", "csv", "xlsx"):

                def job(kind: str, fmt: str = fmt) -> dict:
                    return run_job(
                        {
                            "name": f"export_{kind}",
                            "db": str(base),
                            "out": str(out),
                            "fmt": fmt,
                            "path": f"{kind}.{fmt}",
                        }
                    )

                runs = alternate(args.repeat, {"ours": lambda: job("ours"), "baseline": lambda: job("baseline")})
                verify_export(fmt, out / f"ours.{fmt}", out / f"baseline.{fmt}")
                baseline = {"parquet": "to_parquet", "csv": "to_csv", "xlsx": "to_excel"}[fmt]
                report_job(f"export {fmt}", rows, runs, f"list(qs.values()) + {baseline}")
        if "corrections" in parts:
            n = max(rows // 10, 1)
            corrections = folder / "corrections.csv"
            make_corrections(base, corrections, n)
            common = {"out": str(out), "file": str(corrections)}
            runs = alternate(args.repeat, {
                "ours": lambda: run_job({"name": "plan_ours", "db": str(fresh_copy(base, folder)), **common}),
                "baseline": lambda: run_job({"name": "plan_baseline", "db": str(fresh_copy(base, folder)), **common}),
            })  # fmt: skip
            assert runs["ours"][0]["n_updated"] == runs["baseline"][0]["n_updated"], (
                runs["ours"][0],
                runs["baseline"][0],
            )
            assert runs["ours"][0]["n_cells"] == runs["baseline"][0]["n_cells"]
            report_job(
                "corrections dry-run",
                n,
                runs,
                "in_bulk + Python compare",
                label=f"corrections dry-run {n:,} of {rows:,} rows",
                extra={"of_rows": rows},
            )
            sample = min(SAVE_SAMPLE, n)
            sample_ids = [int(line.split(",", 1)[0]) for line in corrections.read_text().splitlines()[1 : sample + 1]]
            runs = alternate(args.repeat, {
                "ours": lambda: run_job({"name": "apply_ours", "db": str(fresh_copy(base, folder)), **common, "sample_ids": sample_ids}),
                "baseline": lambda: run_job({"name": "apply_baseline", "db": str(fresh_copy(base, folder)), **common, "sample": sample, "sample_ids": sample_ids}),
            })  # fmt: skip
            assert runs["ours"][0]["digest"] == runs["baseline"][0]["digest"], "the sample rows differ"
            scale = n / sample
            report_job(
                "corrections applied",
                n,
                runs,
                f"get()+save() per row (measured on {sample:,}, x{scale:.0f} extrapolated)",
                scale=scale,
                label=f"corrections applied {n:,} of {rows:,} rows",
                extra={"of_rows": rows, "baseline_sample_rows": sample, "baseline_scale": scale},
            )
            for leftover in folder.glob("db-*.sqlite3*"):
                leftover.unlink()
        if "sync" in parts:
            table = make_mariadb_table(MARIADB_URL, rows)
            try:
                common = {"out": str(out), "url": MARIADB_URL, "table": table}
                runs = alternate(args.repeat, {
                    "ours": lambda: run_job({"name": "sync_ours", "db": str(fresh_copy(base, folder)), **common}),
                    "baseline": lambda: run_job({"name": "sync_baseline", "db": str(fresh_copy(base, folder)), **common}),
                })  # fmt: skip
                assert runs["ours"][0]["n_inserted"] == rows
                assert {r["digest"] for r in runs["ours"] + runs["baseline"]} == {runs["ours"][0]["digest"]}, (
                    "tables differ"
                )
                report_job("sync mariadb->sqlite", rows, runs, "pd.read_sql + bulk_create")
            finally:
                drop_mariadb_table(MARIADB_URL, table)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
