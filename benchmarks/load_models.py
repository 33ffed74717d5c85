"""Benchmark write_model against Django's bulk_create, objects.create and a raw sqlite3 executemany.

Loads a deterministic 9-column sales table (sales.Pedido) on a fresh SQLite
file database and on a PostgreSQL database this script creates and drops
(``dw_bench_load_*``), comparing:

* append: ``write_model(df, Pedido)`` vs ``[Pedido(**r) for r in
  df.to_dict("records")]`` + ``bulk_create(batch_size=1000)`` (both start
  from the same DataFrame) vs, on SQLite, a raw ``sqlite3`` ``executemany``
  of ready tuples in the form Django stores (building them is not timed);
* upsert: into a table holding N rows, N rows of which half conflict (with
  changed values): ``write_model(..., mode="upsert", unique_fields=["id"])``
  vs ``bulk_create(batch_size=1000, update_conflicts=True, ...)``;
* create: on the first N rows of the append frame only (N = min(rows, 20,000),
  ``--quick`` min(rows, 5,000): one row at a time takes minutes per run at
  1,000,000 rows), ``write_model(df, Pedido)`` vs ``Pedido.objects.create(**row)``
  for each of ``df.to_dict("records")`` inside one ``transaction.atomic()``,
  the seed's way of loading.

Every timed run gets a fresh database (a file copy / ``CREATE DATABASE ...
TEMPLATE``) and runs in its own subprocess, which reports its peak RSS
(``getrusage(RUSAGE_SELF).ru_maxrss`` at exit: the peak of a process that did
only that job). Contenders alternate; the median of ``--repeat`` timings is
reported with min and max. Before a ratio is reported the table contents are
compared (a digest of every row, ordered by id): exactly for ours vs raw
executemany, and without ``atualizado_em`` vs bulk_create and objects.create,
which overwrite ``auto_now`` fields with the time of the call.

Results go through ``_harness.report`` (area ``load_models``): ``write_model
<db> append`` (baselines ``bulk_create``, ``executemany`` on SQLite),
``write_model <db> upsert`` (baseline ``bulk_create``) and ``write_model <db> vs
objects.create`` (baseline ``create``, at N rows), with ``<db>`` ``sqlite`` or
``postgresql``; ``check.py`` matches its goals on these names.

Usage::

    .venv/bin/python benchmarks/load_models.py            # 1,000,000 rows
    .venv/bin/python benchmarks/load_models.py --quick    # 100,000 rows
    .venv/bin/python benchmarks/load_models.py --rows 20000 --db sqlite
    .venv/bin/python benchmarks/load_models.py --parts create   # only the objects.create comparison
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# _harness sits next to this file; the workers import this module as benchmarks.load_models.
sys.path.append(str(Path(__file__).resolve().parent))
from _harness import Baseline, report  # noqa: E402

DEFAULT_PG = os.environ.get("DW_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
N_CLIENTES = 10_000
N_PRODUTOS = 1_000
SEED = 20240601
PARTS = ("append", "upsert", "create")
CREATE_ROWS, CREATE_ROWS_QUICK = 20_000, 5_000
# Baseline key -> (label in the report, the digest it must share with ours: the ORM
# overwrites the auto_now ``atualizado_em``, raw executemany writes it as given).
BASELINES = {
    "bulk_create": ("bulk_create(batch_size=1000)", "digest_no_updated"),
    "executemany": ("raw executemany", "digest_all"),
    "create": ("Model.objects.create per row", "digest_no_updated"),
}


# -- data ------------------------------------------------------------------------


def make_frames(n_rows: int, folder: Path) -> None:
    """Write the append frame and the upsert frame (half conflicting) as Parquet."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(SEED)

    def money(cents: np.ndarray) -> pa.Array:
        raw = pa.array(cents, pa.int64()).cast(pa.decimal128(38, 0))
        return pa.Array.from_buffers(pa.decimal128(38, 2), len(raw), raw.buffers()).cast(pa.decimal128(14, 2))

    def orders(n: int, first_second: int) -> dict:
        seconds = np.sort(rng.integers(0, 2 * 365 * 86_400, n)) + first_second
        micros = np.where(rng.random(n) < 0.5, 0, rng.integers(0, 1_000_000, n))
        created = seconds * 1_000_000 + micros
        updated = created + rng.integers(0, 3 * 86_400, n) * 1_000_000
        quantidade = rng.integers(1, 21, n)
        total = quantidade * rng.integers(100, 250_000, n)
        return {
            "cliente_id": pa.array(rng.integers(1, N_CLIENTES + 1, n)),
            "produto_id": pa.array(rng.integers(1, N_PRODUTOS + 1, n)),
            "quantidade": pa.array(quantidade),
            "total": money(total),
            "custo": money(total * 3 // 5),
            "criado_em": pa.array(created, pa.timestamp("us", tz="UTC")),
            "atualizado_em": pa.array(updated, pa.timestamp("us", tz="UTC")),
        }

    start = 1_704_067_200  # 2024-01-01 UTC
    pq.write_table(pa.table(orders(n_rows, start)), folder / "append.parquet")
    half = n_rows // 2
    upsert = {"id": pa.array(np.arange(half + 1, half + 1 + n_rows, dtype=np.int64))}
    upsert.update(orders(n_rows, start + 86_400))  # different values for the conflicting half
    pq.write_table(pa.table(upsert), folder / "upsert.parquet")


def head_frame(source: Path, target: Path, n_rows: int) -> None:
    """Write the first ``n_rows`` rows of the Parquet file ``source`` to ``target``."""
    import pyarrow.parquet as pq

    pq.write_table(pq.read_table(source).slice(0, n_rows), target)


def read_frame(path: str):
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return table.to_pandas(types_mapper=lambda t: pd.ArrowDtype(t) if pa.types.is_decimal(t) else None)


# -- worker (one job per subprocess) ---------------------------------------------


def _django(url: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "dw_analytics.settings"
    os.environ["DATABASE_URL"] = url
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


def _digest(with_updated: bool) -> str:
    from django.db import connection

    columns = "id, cliente_id, produto_id, quantidade, total, custo, criado_em"
    if with_updated:
        columns += ", atualizado_em"
    digest = hashlib.sha256()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM sales_pedido ORDER BY id")
        while rows := cursor.fetchmany(50_000):
            digest.update(repr(rows).encode())
    return digest.hexdigest()


def _objects(df):
    from dw_analytics.sales.models import Pedido

    return [Pedido(**row) for row in df.to_dict("records")]


def worker(job: dict) -> dict:
    """Run one job and return its measurements."""
    _django(job["url"])
    from django.core.management import call_command
    from django.db import connection, transaction

    from dw_analytics.load.models import write_model
    from dw_analytics.sales.models import Categoria, Cliente, Pedido, Produto

    action = job["action"]
    out: dict = {}
    if action == "setup":
        call_command("migrate", verbosity=0)
        cat = Categoria.objects.create(nome="Geral")
        Produto.objects.bulk_create(Produto(nome=f"P{i}", categoria=cat, preco=1, custo=1) for i in range(N_PRODUTOS))
        Cliente.objects.bulk_create(
            Cliente(nome=f"C{i}", email=f"c{i}@x.br", cidade="Recife", uf="PE") for i in range(N_CLIENTES)
        )
        if job.get("prefill"):
            write_model(read_frame(job["prefill"]), Pedido)
        connection.close()
        return out
    df = read_frame(job["data"])
    update_fields = [
        "cliente",
        "produto",
        "quantidade",
        "total",
        "custo",
        "criado_em",
        "atualizado_em",
    ]
    if action == "ours":
        started = time.perf_counter()
        result = write_model(df, Pedido, mode=job["mode"], unique_fields=["id"] if job["mode"] == "upsert" else None)
        out["seconds"] = time.perf_counter() - started
        out["counts"] = [result.n_inserted, result.n_updated, result.n_deleted]
    elif action == "bulk_create":
        started = time.perf_counter()
        objs = _objects(df)
        with transaction.atomic():
            if job["mode"] == "upsert":
                Pedido.objects.bulk_create(
                    objs,
                    batch_size=1000,
                    update_conflicts=True,
                    unique_fields=["id"],
                    update_fields=update_fields,
                )
            else:
                Pedido.objects.bulk_create(objs, batch_size=1000)
        out["seconds"] = time.perf_counter() - started
    elif action == "create":
        started = time.perf_counter()
        with transaction.atomic():
            for row in df.to_dict("records"):
                Pedido.objects.create(**row)
        out["seconds"] = time.perf_counter() - started
    elif action == "executemany":
        import sqlite3

        # The tuples Django would bind: str(Decimal), naive UTC str(datetime).
        columns = [
            "cliente_id",
            "produto_id",
            "quantidade",
            "total",
            "custo",
            "criado_em",
            "atualizado_em",
        ]
        records = df[columns].to_dict("records")
        rows = [
            (
                r["cliente_id"],
                r["produto_id"],
                r["quantidade"],
                str(r["total"]),
                str(r["custo"]),
                str(r["criado_em"].to_pydatetime().replace(tzinfo=None)),
                str(r["atualizado_em"].to_pydatetime().replace(tzinfo=None)),
            )
            for r in records
        ]
        del records
        connection.close()
        raw = sqlite3.connect(job["path"], isolation_level=None)
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("PRAGMA synchronous=NORMAL")
        started = time.perf_counter()
        raw.execute("BEGIN IMMEDIATE")
        raw.executemany(
            f"INSERT INTO sales_pedido ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            rows,
        )
        raw.execute("COMMIT")
        out["seconds"] = time.perf_counter() - started
        raw.close()
    if job.get("digest"):
        out["digest_all"] = _digest(True)
        out["digest_no_updated"] = _digest(False)
    connection.close()
    return out


def run_job(job: dict) -> dict:
    """Run ``job`` in a fresh interpreter; add its peak RSS (MB)."""
    code = (
        "import json, resource, sys; sys.path.insert(0, sys.argv[1]); "
        "from benchmarks.load_models import worker; "
        "out = worker(json.loads(sys.argv[2])); "
        "out['peak_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024; "
        "print(json.dumps(out))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(REPO), json.dumps(job)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    if proc.returncode != 0:
        raise SystemExit(f"job {job['action']} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- databases -------------------------------------------------------------------


class SQLiteTarget:
    name = "sqlite"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.bases: dict[str, Path] = {}

    def prepare(self, key: str, prefill: str | None) -> None:
        path = self.folder / f"base_{key}.sqlite3"
        run_job({"action": "setup", "url": f"sqlite:///{path}", "prefill": prefill})
        self.bases[key] = path

    def fresh(self, key: str) -> tuple[str, str]:
        path = self.folder / "run.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.bases[key], path)
        return f"sqlite:///{path}", str(path)

    def cleanup(self) -> None:
        pass


class PostgresTarget:
    name = "postgresql"

    def __init__(self, server: str) -> None:
        import psycopg

        self.server = server.rstrip("/")
        self.admin = psycopg.connect(f"{self.server}/postgres", autocommit=True)
        self.created: list[str] = []
        # Per-run names: two runs of this script at once must not share databases.
        self.prefix = f"dw_bench_load_{os.getpid()}"

    def _create(self, name: str, template: str | None = None) -> None:
        self.admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        self.admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        if name not in self.created:
            self.created.append(name)

    def prepare(self, key: str, prefill: str | None) -> None:
        name = f"{self.prefix}_{key}"
        self._create(name)
        run_job({"action": "setup", "url": f"{self.server}/{name}", "prefill": prefill})

    def fresh(self, key: str) -> tuple[str, str]:
        self._create(f"{self.prefix}_run", template=f"{self.prefix}_{key}")
        return f"{self.server}/{self.prefix}_run", ""

    def cleanup(self) -> None:
        for name in self.created:
            self.admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        self.admin.close()


# -- main ------------------------------------------------------------------------


def compare(target, key: str, data: str, mode: str, contenders: list[str], repeat: int) -> dict:
    """Time ``contenders`` alternately; return {contender: {"seconds": [...], ...}}."""
    results = {c: {"seconds": [], "peak_mb": 0.0} for c in contenders}
    for rep in range(repeat):
        for contender in contenders:
            url, path = target.fresh(key)
            job = {"action": contender, "url": url, "path": path, "data": data, "mode": mode}
            job["digest"] = rep == repeat - 1
            out = run_job(job)
            entry = results[contender]
            entry["seconds"].append(out["seconds"])
            entry["peak_mb"] = max(entry["peak_mb"], out["peak_mb"])
            for k in ("digest_all", "digest_no_updated", "counts"):
                if k in out:
                    entry[k] = out[k]
    return results


def _parts(value: str) -> list[str]:
    parts = [part.strip() for part in value.split(",") if part.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        raise argparse.ArgumentTypeError(f"unknown part(s) {unknown}; choose from {','.join(PARTS)}")
    return parts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "all"], default="all")
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL server URL (no database name)")
    parser.add_argument(
        "--parts",
        type=_parts,
        default=list(PARTS),
        help=f"comma-separated comparisons to run (default all: {','.join(PARTS)})",
    )
    args = parser.parse_args(argv)
    n_rows = 100_000 if args.quick else args.rows
    create_rows = min(n_rows, CREATE_ROWS_QUICK if args.quick else CREATE_ROWS)

    folder = Path(tempfile.mkdtemp(prefix="dw_bench_load_"))
    try:
        make_frames(n_rows, folder)
        data = {"append": folder / "append.parquet", "upsert": folder / "upsert.parquet"}
        if "create" in args.parts:
            data["create"] = folder / "create.parquet"
            head_frame(data["append"], data["create"], create_rows)
        targets = []
        if args.db in ("sqlite", "all"):
            targets.append(SQLiteTarget(folder))
        if args.db in ("postgresql", "all"):
            targets.append(PostgresTarget(args.pg))
        for target in targets:
            try:
                _bench(target, args.parts, n_rows, create_rows, {k: str(v) for k, v in data.items()}, args.repeat)
            finally:
                target.cleanup()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _baseline(entry: dict, label: str) -> Baseline:
    return Baseline(entry["seconds"], peak_mb=entry["peak_mb"], label=label)


def _append_comparison(target, data: str, n_rows: int, baselines: list[str], repeat: int, name: str) -> None:
    """Load ``data`` into the empty table with ours and ``baselines``; check the tables; report."""
    res = compare(target, "empty", data, "append", ["ours", *baselines], repeat)
    ours = res["ours"]
    assert ours["counts"] == [n_rows, 0, 0], ours["counts"]
    for key in baselines:
        label, digest = BASELINES[key]
        assert ours[digest] == res[key][digest], f"write_model and {label} tables differ"
    report(
        "load_models",
        name,
        rows=n_rows,
        ours_s=ours["seconds"],
        peak_mb=ours["peak_mb"],
        baselines={key: _baseline(res[key], BASELINES[key][0]) for key in baselines},
    )


def _bench(target, parts: list[str], n_rows: int, create_rows: int, data: dict[str, str], repeat: int) -> None:
    if "append" in parts or "create" in parts:
        target.prepare("empty", None)

    if "append" in parts:
        baselines = ["bulk_create"] + (["executemany"] if target.name == "sqlite" else [])
        _append_comparison(target, data["append"], n_rows, baselines, repeat, f"write_model {target.name} append")

    if "upsert" in parts:
        target.prepare("full", data["append"])
        res = compare(target, "full", data["upsert"], "upsert", ["ours", "bulk_create"], repeat)
        ours, bulk = res["ours"], res["bulk_create"]
        half = n_rows // 2
        assert ours["counts"] == [n_rows - (n_rows - half), n_rows - half, 0] or ours["counts"] == [
            n_rows - half,
            half,
            0,
        ], ours["counts"]
        assert ours["digest_no_updated"] == bulk["digest_no_updated"], "upsert tables differ"
        new, conflicting = ours["counts"][0], ours["counts"][1]
        report(
            "load_models",
            f"write_model {target.name} upsert",
            rows=n_rows,
            label=f"write_model {target.name} upsert {n_rows:,} rows ({conflicting:,} conflicting, {new:,} new)",
            ours_s=ours["seconds"],
            peak_mb=ours["peak_mb"],
            baselines={"bulk_create": _baseline(bulk, "bulk_create(update_conflicts=True)")},
            extra={"conflicting": conflicting, "new": new},
        )

    if "create" in parts:
        _append_comparison(
            target, data["create"], create_rows, ["create"], repeat, f"write_model {target.name} vs objects.create"
        )


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    main()
