"""Star schema build vs the same joins and aggregates in DuckDB SQL.

Generates orders (fixed seed) for 10,000 products (10 % of them changed
mid-range, so ``dim_product`` has type-2 history), 100,000 customers and 20
categories, held in DataFrames (money as decimal128(14, 2), times tz-aware
America/Sao_Paulo). Then, alternating, in fresh subprocesses:

* ours: ``fact_sales`` (product version as of the order, customer, category
  and date keys, lucro), ``sales_by_category`` and ``sales_by_period``
  (month) from ``transforms``;
* DuckDB: the same three results by SQL over the same frames (registered as
  Arrow tables), fetched back as DataFrames.

Each process runs its contender once untimed, then timed (a warm-up for both).

Both receive the same dimensions (built once by ``transforms.star``; their
build time is printed separately). Results are compared before any ratio is
printed: fact rows and every count and money sum exactly; DuckDB divides
decimals in double precision, so averages and margins must agree within one
unit of their last place (ours are exact half-even).

Usage::

    python benchmarks/star_schema.py                 # 1,000,000 and 10,000,000 orders
    python benchmarks/star_schema.py --rows 2000000  # one size
    python benchmarks/star_schema.py --quick         # 100,000 orders
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from _harness import Baseline, report, report_growth

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TZ = "America/Sao_Paulo"
N_PRODUCTS, N_CUSTOMERS, N_CATEGORIES = 10_000, 100_000, 20
SEED = 20_240_601
TABLES = ("orders", "products", "categories", "dim_product", "dim_customer", "dim_category")

# DuckDB: the same answers as fact_sales / sales_by_category / sales_by_period.
FACT_SQL = """
SELECT o.id AS order_id,
       CAST(year(timezone('America/Sao_Paulo', o.criado_em)) * 10000
            + month(timezone('America/Sao_Paulo', o.criado_em)) * 100
            + day(timezone('America/Sao_Paulo', o.criado_em)) AS BIGINT) AS date_key,
       COALESCE(p.product_key, -1) AS product_key,
       COALESCE(c.customer_key, -1) AS customer_key,
       COALESCE(k.category_key, -1) AS category_key,
       o.quantidade, o.total, o.custo,
       CAST(o.total - o.custo AS DECIMAL(15, 2)) AS lucro
FROM orders o
LEFT JOIN dim_product p
       ON p.produto_id = o.produto_id AND p.product_key <> -1
      AND o.criado_em >= p.valid_from AND o.criado_em < p.valid_to
LEFT JOIN dim_customer c ON c.cliente_id = o.cliente_id AND c.customer_key <> -1
LEFT JOIN dim_category k ON k.categoria_id = p.categoria_id AND k.category_key <> -1
"""
BY_CATEGORY_SQL = """
SELECT COALESCE(p.categoria_id, -1) AS categoria_id,
       COALESCE(any_value(c.nome), 'Unknown') AS categoria,
       count(*) AS total_vendas,
       CAST(sum(o.total) AS DECIMAL(38, 2)) AS receita,
       round(sum(o.total) / count(o.total), 4) AS valor_medio,
       CAST(sum(o.total - o.custo) AS DECIMAL(38, 2)) AS lucro,
       round(sum(o.total - o.custo) / nullif(sum(o.total), 0), 6) AS margem
FROM orders o
LEFT JOIN products p ON p.id = o.produto_id
LEFT JOIN categories c ON c.id = p.categoria_id
GROUP BY 1 ORDER BY 1
"""
BY_MONTH_SQL = """
SELECT CAST(date_trunc('month', timezone('America/Sao_Paulo', criado_em)) AS DATE) AS periodo,
       count(*) AS total_vendas,
       sum(quantidade) AS quantidade,
       CAST(sum(total) AS DECIMAL(38, 2)) AS receita,
       round(sum(total) / count(total), 4) AS valor_medio,
       CAST(sum(total - custo) AS DECIMAL(38, 2)) AS lucro,
       round(sum(total - custo) / nullif(sum(total), 0), 6) AS margem
FROM orders GROUP BY 1 ORDER BY 1
"""


# -- data -----------------------------------------------------------------------
def generate(rows: int, folder: Path) -> float:
    """Write the inputs and the shared dimensions as Parquet; return the dims' build time."""
    from transforms.money import scaled_to_decimal
    from transforms.star import dim_category, dim_customer, dim_product

    rng = np.random.default_rng(SEED)
    categories = pd.DataFrame(
        {
            "id": np.arange(1, N_CATEGORIES + 1),
            "nome": [f"Categoria {i:02d}" for i in range(1, N_CATEGORIES + 1)],
        }
    )
    price = rng.integers(100, 100_000, N_PRODUCTS)
    first_snapshot = pd.DataFrame(
        {
            "id": np.arange(1, N_PRODUCTS + 1),
            "nome": [f"Produto {i}" for i in range(1, N_PRODUCTS + 1)],
            "categoria_id": rng.integers(1, N_CATEGORIES + 1, N_PRODUCTS),
            "preco": scaled_to_decimal(price),
            "custo": scaled_to_decimal(price * 6 // 10),
            "atualizado_em": pd.Timestamp("2022-01-01", tz=TZ),
        }
    )
    products = first_snapshot.copy()
    changed = rng.random(N_PRODUCTS) < 0.10
    products.loc[changed, "categoria_id"] = rng.integers(1, N_CATEGORIES + 1, int(changed.sum()))
    products.loc[changed, "atualizado_em"] = pd.Timestamp("2024-01-01", tz=TZ)
    customers = pd.DataFrame(
        {
            "id": np.arange(1, N_CUSTOMERS + 1),
            "nome": [f"Cliente {i}" for i in range(N_CUSTOMERS)],
            "email": [f"c{i}@example.com" for i in range(N_CUSTOMERS)],
            "cidade": "Recife",
            "uf": "PE",
        }
    )
    start_us = pd.Timestamp("2022-01-01", tz="UTC").value // 1000
    sold_at = start_us + rng.integers(0, 4 * 365 * 86_400 * 10**6, rows)
    produto = rng.integers(1, N_PRODUCTS + 11, rows)  # ids above 10,000 are unknown products
    quantidade = rng.integers(1, 6, rows)
    total = price[np.minimum(produto, N_PRODUCTS) - 1] * quantidade
    orders = pd.DataFrame(
        {
            "id": np.arange(1, rows + 1),
            "cliente_id": rng.integers(1, N_CUSTOMERS + 101, rows),  # some unknown customers
            "produto_id": produto,
            "quantidade": quantidade,
            "total": scaled_to_decimal(total),
            "custo": scaled_to_decimal(total * rng.integers(40, 90, rows) // 100),
            "criado_em": pd.DatetimeIndex(sold_at.astype("datetime64[us]")).tz_localize("UTC").tz_convert(TZ),
        }
    )
    started = time.perf_counter()
    dims = {
        "dim_product": dim_product(products, categories, dim_product(first_snapshot, categories)),
        "dim_customer": dim_customer(customers),
        "dim_category": dim_category(categories),
    }
    dims_s = time.perf_counter() - started
    frames = {"orders": orders, "products": products, "categories": categories, **dims}
    for name, frame in frames.items():
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / f"{name}.parquet")
    return dims_s


def load(folder: Path) -> dict[str, pd.DataFrame]:
    return {
        name: pq.read_table(folder / f"{name}.parquet").to_pandas(
            types_mapper=lambda t: pd.ArrowDtype(t) if pa.types.is_decimal(t) else None
        )
        for name in TABLES
    }


# -- contenders (each runs in its own process) ----------------------------------------
def run_ours(data: dict[str, pd.DataFrame]) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    from transforms.sales import sales_by_category, sales_by_period
    from transforms.star import fact_sales

    timings, results = {}, {}
    started = time.perf_counter()
    results["fact"] = fact_sales(data["orders"], data["dim_product"], data["dim_customer"], data["dim_category"])
    timings["fact"] = time.perf_counter() - started
    started = time.perf_counter()
    results["by_category"] = sales_by_category(data["orders"], data["products"], data["categories"])
    timings["by_category"] = time.perf_counter() - started
    started = time.perf_counter()
    results["by_month"] = sales_by_period(data["orders"], "month")
    timings["by_month"] = time.perf_counter() - started
    return timings, results


def run_duckdb(data: dict[str, pd.DataFrame]) -> tuple[dict[str, float], dict[str, pd.DataFrame]]:
    import duckdb

    con = duckdb.connect()
    timings, results = {}, {}

    def query(name: str, sql: str, tables: list[str]) -> None:
        started = time.perf_counter()
        for table in tables:
            con.register(table, pa.Table.from_pandas(data[table], preserve_index=False))
        results[name] = con.sql(sql).to_arrow_table().to_pandas(types_mapper=pd.ArrowDtype)
        timings[name] = time.perf_counter() - started

    query("fact", FACT_SQL, ["orders", "dim_product", "dim_customer", "dim_category"])
    query("by_category", BY_CATEGORY_SQL, ["orders", "products", "categories"])
    query("by_month", BY_MONTH_SQL, ["orders"])
    return timings, results


def worker(contender: str, folder: Path, keep: bool) -> None:
    data = load(folder)
    run = run_ours if contender == "ours" else run_duckdb
    # One untimed run first, for both contenders: on this VM a fresh process's first
    # touch of gigabytes of memory costs seconds that vary from run to run (1M orders:
    # the same fact build took 0.09 to 0.32 s); the timed run then measures the work.
    run(data)
    timings, results = run(data)
    if keep:
        for name, frame in results.items():
            pq.write_table(
                pa.Table.from_pandas(frame, preserve_index=False),
                folder / f"{contender}_{name}.parquet",
            )
    print(json.dumps(timings))


LAUNCHER = (
    "import json, resource, subprocess, sys\n"
    "out = subprocess.run(sys.argv[1:], check=True, stdout=subprocess.PIPE, text=True).stdout\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(json.dumps({'timings': json.loads(out.strip().splitlines()[-1]), 'peak_kib': peak}))\n"
)


def measure(contender: str, folder: Path, keep: bool) -> dict:
    """Run one contender in a fresh process; its launcher reads the child's peak RSS."""
    command = [sys.executable, __file__, "--worker", contender, "--folder", str(folder)]
    if keep:
        command.append("--keep")
    out = subprocess.run([sys.executable, "-c", LAUNCHER, *command], check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(out.stdout)


# -- checks and report ---------------------------------------------------------------
def check_equal(folder: Path) -> None:
    """Our results must equal DuckDB's: exactly for rows, counts and sums."""

    def read(name: str) -> pd.DataFrame:
        return pq.read_table(folder / f"{name}.parquet").to_pandas(types_mapper=pd.ArrowDtype)

    ours, theirs = read("ours_fact"), read("duckdb_fact").sort_values("order_id", ignore_index=True)
    for column in ours.columns:
        left = ours[column].to_numpy(object) if "decimal" in str(ours[column].dtype) else ours[column].to_numpy()
        right = theirs[column].to_numpy(object) if "decimal" in str(theirs[column].dtype) else theirs[column].to_numpy()
        assert np.array_equal(left, right), f"fact_sales.{column} differs from DuckDB"
    for name in ("by_category", "by_month"):
        ours, theirs = read(f"ours_{name}"), read(f"duckdb_{name}")
        assert len(ours) == len(theirs), f"{name}: {len(ours)} rows vs DuckDB {len(theirs)}"
        key = ours.columns[0]
        assert ours[key].astype(str).tolist() == theirs[key].astype(str).tolist(), f"{name}.{key} differs"
        for column in (
            "total_vendas",
            "receita",
            "lucro",
            *(["quantidade"] if name == "by_month" else []),
        ):
            assert ours[column].tolist() == theirs[column].astype(ours[column].dtype).tolist(), f"{name}.{column}"
        for column, unit in (("valor_medio", Decimal("0.0001")), ("margem", Decimal("0.000001"))):
            for mine, other in zip(ours[column].tolist(), theirs[column].tolist(), strict=True):
                assert abs(mine - Decimal(repr(other))) <= unit, f"{name}.{column}: {mine} vs {other}"


def bench(rows: int, repeat: int) -> float:
    with tempfile.TemporaryDirectory(prefix="dw_star_") as tmp:
        folder = Path(tmp)
        dims_s = generate(rows, folder)
        runs: dict[str, list[dict]] = {"ours": [], "duckdb": []}
        for round_ in range(repeat):
            for contender in ("ours", "duckdb") if round_ % 2 == 0 else ("duckdb", "ours"):
                runs[contender].append(measure(contender, folder, keep=round_ == 0))
            if round_ == 0:
                check_equal(folder)
        peak = {c: max(r["peak_kib"] for r in rs) / 1024 for c, rs in runs.items()}
        total = {c: [sum(r["timings"].values()) for r in rs] for c, rs in runs.items()}
        report(
            "transforms",
            "star_schema",
            rows=rows,
            label=f"star_schema {rows:,} orders",
            ours_label="fact_sales + sales_by_category + sales_by_period",
            ours_s=total["ours"],
            peak_mb=peak["ours"],
            baselines={"duckdb": Baseline(total["duckdb"], peak_mb=peak["duckdb"], label="DuckDB SQL")},
            ratio="time",
            note="; results equal",
            extra={"dimensions_s": dims_s},
        )
        for part in ("fact", "by_category", "by_month"):
            report(
                "transforms",
                f"star_schema {part}",
                rows=rows,
                label=f"  {part} {rows:,}",
                ours_s=[r["timings"][part] for r in runs["ours"]],
                baselines={"duckdb": Baseline([r["timings"][part] for r in runs["duckdb"]], label="DuckDB")},
                ratio="time",
            )
        print(
            f"  dimensions (10,000 products x 2 builds, 100,000 customers): {dims_s:.2f} s",
            flush=True,
        )
        return statistics.median(total["ours"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, action="append", help="orders to generate (repeatable)")
    parser.add_argument("--quick", action="store_true", help="100,000 orders")
    parser.add_argument("--repeat", type=int, default=3, help="timings per contender (>= 3 for a report)")
    parser.add_argument("--worker", choices=["ours", "duckdb"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.folder, args.keep)
        return
    sizes = [100_000] if args.quick else (args.rows or [1_000_000, 10_000_000])
    times = [bench(rows, args.repeat) for rows in sizes]
    if len(sizes) > 1:
        report_growth("transforms", "star_schema", rows=sizes, seconds=times, label="star_schema growth")


if __name__ == "__main__":
    main()
