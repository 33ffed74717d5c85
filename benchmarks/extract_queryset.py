"""Benchmark: read_queryset vs a raw DB-API cursor vs pd.DataFrame(list(qs.values())).

Creates N Pedido rows (deterministic, raw inserts) in a fresh SQLite file
database and in a PostgreSQL database created and dropped here
(``dw_bench_extract`` on the server of ``--postgres``), then times, per
database, alternating, each contender in its own subprocess:

- ``read_queryset(Pedido.objects.all())``
- ``cursor.fetchall()`` on a plain DB-API connection (``sqlite3`` / ``psycopg``)
  of the same SELECT, then ``pd.DataFrame(rows, columns=...)``
- ``pd.DataFrame(list(Pedido.objects.all().values()))``

and checks that every contender read the same rows (exact money: sums and a
row-aligned checksum of cents) before printing ratios and peak RSS.

Usage::

    .venv/bin/python benchmarks/extract_queryset.py            # 1,000,000 rows
    .venv/bin/python benchmarks/extract_queryset.py --quick    # 100,000 rows
    .venv/bin/python benchmarks/extract_queryset.py --rows 20000 --repeat 3 --db sqlite
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from _harness import Baseline, report

REPO = Path(__file__).resolve().parent.parent
CONTENDERS = ("read_queryset", "raw_fetchall", "qs_values", "read_queryset_chunked")
CHUNK_ROWS = 50_000
PEDIDO_COLUMNS = [
    "id",
    "cliente_id",
    "produto_id",
    "quantidade",
    "total",
    "custo",
    "criado_em",
    "atualizado_em",
]
N_CATEGORIAS, N_PRODUTOS, N_CLIENTES = 20, 2_000, 20_000
BENCH_PG_DB = f"dw_bench_extract_{os.getpid()}"  # per run: two runs at once must not share it


# -- set-up -------------------------------------------------------------------------------


def django_setup(database_url: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "dw_analytics.settings"
    os.environ["DATABASE_URL"] = database_url
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


def generate_rows(n_rows: int, seed: int = 20240601):
    """Deterministic Pedido columns as numpy arrays (money as integer cents)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ids = np.arange(1, n_rows + 1, dtype=np.int64)
    cliente = rng.integers(1, N_CLIENTES + 1, n_rows)
    produto = rng.integers(1, N_PRODUTOS + 1, n_rows)
    quantidade = rng.integers(1, 20, n_rows)
    total_cents = rng.integers(1, 5_000_000_00, n_rows)  # up to 5 million BRL
    custo_cents = (total_cents * rng.uniform(0.3, 0.9, n_rows)).astype(np.int64)
    start = np.datetime64("2022-01-01T00:00:00", "us")
    criado = start + rng.integers(0, 3 * 365 * 86_400 * 10**6, n_rows).astype("timedelta64[us]")
    atualizado = criado + rng.integers(0, 30 * 86_400 * 10**6, n_rows).astype("timedelta64[us]")
    return ids, cliente, produto, quantidade, total_cents, custo_cents, criado, atualizado


def cents_text(cents):
    import numpy as np

    cents = np.asarray(cents)
    whole = (cents // 100).astype(str)
    frac = np.char.zfill((cents % 100).astype(str), 2)
    return np.char.add(np.char.add(whole, "."), frac)


def build_database(database_url: str, n_rows: int) -> None:
    """Migrate, then fill the seed's tables with raw inserts (runs in a subprocess)."""
    django_setup(database_url)
    import numpy as np
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    ids, cliente, produto, qtd, total, custo, criado, atualizado = generate_rows(n_rows)
    now = "2024-01-01 00:00:00"
    categorias = [(i, f"Categoria {i:02d}") for i in range(1, N_CATEGORIAS + 1)]
    produtos = [
        (i, f"Produto {i}", (i % N_CATEGORIAS) + 1, f"{10 + i % 500}.90", f"{5 + i % 300}.35", now)
        for i in range(1, N_PRODUTOS + 1)
    ]
    ufs = ["SP", "RJ", "MG", "PE", "BA", "RS"]
    clientes = [
        (i, f"Cliente {i}", f"c{i}@example.com", "Cidade", ufs[i % len(ufs)], now) for i in range(1, N_CLIENTES + 1)
    ]
    criado_text = np.datetime_as_string(criado, unit="us")
    atualizado_text = np.datetime_as_string(atualizado, unit="us")
    block = 200_000
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            raw = connection.connection
            raw.execute("BEGIN")  # one transaction: not one commit per row
            raw.executemany("INSERT INTO sales_categoria VALUES (?, ?)", categorias)
            raw.executemany(
                "INSERT INTO sales_produto (id, nome, categoria_id, preco, custo, atualizado_em)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                produtos,
            )
            raw.executemany(
                "INSERT INTO sales_cliente (id, nome, email, cidade, uf, atualizado_em) VALUES (?, ?, ?, ?, ?, ?)",
                clientes,
            )
            sql = (
                "INSERT INTO sales_pedido (id, cliente_id, produto_id, quantidade, total, custo,"
                " criado_em, atualizado_em) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            )
            for lo in range(0, n_rows, block):
                hi = min(lo + block, n_rows)
                rows = zip(
                    ids[lo:hi].tolist(),
                    cliente[lo:hi].tolist(),
                    produto[lo:hi].tolist(),
                    qtd[lo:hi].tolist(),
                    # Django's SQLite backend binds Decimal as text; the column's NUMERIC
                    # affinity stores it as REAL, exactly as an ORM save would.
                    cents_text(total[lo:hi]).tolist(),
                    cents_text(custo[lo:hi]).tolist(),
                    np.char.replace(criado_text[lo:hi], "T", " ").tolist(),
                    np.char.replace(atualizado_text[lo:hi], "T", " ").tolist(),
                    strict=True,
                )
                raw.executemany(sql, rows)
            raw.execute("COMMIT")
        else:
            raw = connection.connection
            with raw.cursor() as pg:
                with pg.copy("COPY sales_categoria (id, nome) FROM STDIN") as copy:
                    for row in categorias:
                        copy.write_row(row)
                with pg.copy(
                    "COPY sales_produto (id, nome, categoria_id, preco, custo, atualizado_em) FROM STDIN"
                ) as copy:
                    for row in produtos:
                        copy.write_row(row)
                with pg.copy("COPY sales_cliente (id, nome, email, cidade, uf, atualizado_em) FROM STDIN") as copy:
                    for row in clientes:
                        copy.write_row(row)
                with pg.copy(
                    "COPY sales_pedido (id, cliente_id, produto_id, quantidade, total, custo,"
                    " criado_em, atualizado_em) FROM STDIN"
                ) as copy:
                    for lo in range(0, n_rows, block):
                        hi = min(lo + block, n_rows)
                        columns = [
                            ids[lo:hi].astype(str),
                            cliente[lo:hi].astype(str),
                            produto[lo:hi].astype(str),
                            qtd[lo:hi].astype(str),
                            cents_text(total[lo:hi]),
                            cents_text(custo[lo:hi]),
                            np.char.add(criado_text[lo:hi], "+00"),
                            np.char.add(atualizado_text[lo:hi], "+00"),
                        ]
                        text = "\n".join("\t".join(r) for r in zip(*columns, strict=True))
                        copy.write(text + "\n")
                for table in ("sales_categoria", "sales_produto", "sales_cliente", "sales_pedido"):
                    pg.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
                pg.execute("ANALYZE")
            raw.commit()
        cursor.execute("SELECT count(*) FROM sales_pedido")
        assert cursor.fetchone()[0] == n_rows


# -- one contender, in its own process -----------------------------------------------------


def fingerprint(df) -> dict:
    """Row count, exact money sums and a row-aligned checksum (additive over chunks)."""
    import numpy as np
    import pandas as pd

    ids = df["id"].to_numpy(dtype=np.int64)

    def cents(column):
        values = df[column]
        if isinstance(values.dtype, pd.ArrowDtype):
            exact = [int(v.scaleb(2)) for v in values.tolist()]
        elif values.dtype == object:  # Decimal objects (ORM, psycopg)
            exact = [int(Decimal(v).scaleb(2)) for v in values.tolist()]
        else:  # floats from SQLite: what a careful user would do by hand
            exact = np.rint(values.to_numpy(dtype=np.float64) * 100).astype(np.int64).tolist()
        return np.array(exact, dtype=np.int64)

    total, custo = cents("total"), cents("custo")
    created = pd.to_datetime(df["criado_em"], utc=True, format="ISO8601")
    created_us = created.astype("datetime64[us, UTC]").astype("int64").to_numpy()
    return {
        "rows": len(df),
        "id_sum": int(ids.sum()),
        "total_cents": int(total.sum()),
        "custo_cents": int(custo.sum()),
        "checksum": int(((ids % 997) * total).sum() + ((ids % 991) * custo).sum()),
        # Split seconds / microseconds so the int64 sums cannot overflow.
        "criado_s_sum": int((created_us // 10**6).sum()),
        "criado_us_sum": int((created_us % 10**6).sum()),
    }


def add_fingerprints(a: dict | None, b: dict) -> dict:
    """Every fingerprint field is a per-row sum: chunks add up to the whole."""
    return b if a is None else {key: a[key] + b[key] for key in a}


def run_contender(name: str, database_url: str) -> None:
    django_setup(database_url)
    import pandas as pd
    from django.db import connection

    from dw_analytics.extract.queryset import read_queryset
    from dw_analytics.sales.models import Pedido

    connection.ensure_connection()
    settings_dict = connection.settings_dict
    sql = f"SELECT {', '.join(PEDIDO_COLUMNS)} FROM sales_pedido"
    start = time.perf_counter()
    if name == "read_queryset_chunked":
        # Fingerprints are summed chunk by chunk (outside the clock), so only one
        # chunk is alive at a time: the peak RSS is the streaming reader's.
        total, checking = None, 0.0
        for chunk in read_queryset(Pedido.objects.all(), chunksize=CHUNK_ROWS):
            tick = time.perf_counter()
            total = add_fingerprints(total, fingerprint(chunk))
            checking += time.perf_counter() - tick
        elapsed = time.perf_counter() - start - checking
        print(json.dumps({"seconds": elapsed, "fingerprint": total}))
        return
    if name == "read_queryset":
        df = read_queryset(Pedido.objects.all())
    elif name == "qs_values":
        df = pd.DataFrame(list(Pedido.objects.all().values()))
    elif name == "raw_fetchall":
        if connection.vendor == "sqlite":
            import sqlite3

            raw = sqlite3.connect(settings_dict["NAME"])
        else:
            import psycopg

            raw = psycopg.connect(database_url.replace("postgres://", "postgresql://", 1))
        cursor = raw.cursor()
        cursor.execute(sql)
        df = pd.DataFrame(cursor.fetchall(), columns=PEDIDO_COLUMNS)
        raw.close()
    else:
        raise SystemExit(f"unknown contender {name}")
    elapsed = time.perf_counter() - start
    print(json.dumps({"seconds": elapsed, "fingerprint": fingerprint(df)}))


def measure(name: str, database_url: str) -> dict:
    """Run one contender in a fresh process; its own peak RSS from wait4()."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--worker", name, "--url", database_url],
        stdout=subprocess.PIPE,
        cwd=REPO,
    )
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{name} failed with exit code {proc.returncode}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["peak_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    return result


# -- driver --------------------------------------------------------------------------------


def bench_database(label: str, database_url: str, n_rows: int, repeat: int) -> None:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, __file__, "--build", str(n_rows), "--url", database_url],
        check=True,
        cwd=REPO,
    )
    print(f"# {label}: built {n_rows:,} rows in {time.perf_counter() - t0:.1f} s", flush=True)
    runs: dict[str, list[dict]] = {name: [] for name in CONTENDERS}
    for _ in range(repeat):
        for name in CONTENDERS:  # alternate the contenders
            runs[name].append(measure(name, database_url))
    reference = runs["read_queryset"][0]["fingerprint"]
    for name, results in runs.items():
        for result in results:
            if result["fingerprint"] != reference:
                raise SystemExit(f"{label}: {name} read different data: {result['fingerprint']} != {reference}")
    peak = {name: max(r["peak_mb"] for r in res) for name, res in runs.items()}
    times = {name: [r["seconds"] for r in res] for name, res in runs.items()}
    raw_fetchall = Baseline(
        times["raw_fetchall"], peak_mb=peak["raw_fetchall"], label="raw cursor.fetchall()->DataFrame"
    )
    report(
        "extract",
        f"read_queryset {label}",
        rows=n_rows,
        ours_s=times["read_queryset"],
        peak_mb=peak["read_queryset"],
        baselines={
            "raw_fetchall": raw_fetchall,
            "qs_values": Baseline(
                times["qs_values"], peak_mb=peak["qs_values"], label="pd.DataFrame(list(qs.values()))"
            ),
        },
        note="; same rows, exact money",
    )
    report(
        "extract",
        f"read_queryset chunked {label}",
        rows=n_rows,
        label=f"read_queryset chunksize={CHUNK_ROWS:,} {label} {n_rows:,} rows",
        ours_s=times["read_queryset_chunked"],
        peak_mb=peak["read_queryset_chunked"],
        baselines={"raw_fetchall": raw_fetchall},
        note=f" (whole read {peak['read_queryset']:.0f} MB)",
        extra={"chunksize": CHUNK_ROWS},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("DW_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="a server URL whose user may create databases",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--build", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return run_contender(args.worker, args.url)
    if args.build:
        return build_database(args.url, args.build)
    n_rows = 100_000 if args.quick else args.rows

    if args.db in ("sqlite", "both"):
        folder = Path(tempfile.mkdtemp(prefix="dw_bench_extract_"))
        try:
            bench_database("sqlite", f"sqlite:///{folder / 'bench.sqlite3'}", n_rows, args.repeat)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    if args.db in ("postgres", "both"):
        import psycopg

        server = args.postgres.replace("postgres://", "postgresql://", 1)
        base, _, _name = server.rpartition("/")
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {BENCH_PG_DB}")
            admin.execute(f"CREATE DATABASE {BENCH_PG_DB}")
        try:
            bench_database("postgresql", f"{base}/{BENCH_PG_DB}", n_rows, args.repeat)
        finally:
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {BENCH_PG_DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
