"""Soak test of the nightly refresh: many nights of changing data, with crashes, against a full refresh.

A fresh database (a temporary SQLite file, or ``--db postgres``) gets
``--orders`` generated orders. Then ``--runs`` consecutive nightly refreshes
run, each in its own process, each after new data arrived: 1% new orders,
0.1% updated orders, one deleted order and a few external rows for the ETL;
every fourth night also a product's price change and a customer's move.
Every fifth night first crashes (alternately SIGKILL from inside the
warehouse transaction, and an injected exception in the last load) and is
then run again. Afterwards:

* the warehouse (fact, aggregates, dimensions) equals a full refresh of the
  same data (compared row by row through a SHA-256 of the ordered rows, plus
  counts and totals computed by the database), and the published Parquet
  snapshot holds the same fact total and the warehouse's dimensions;
* every crash left a failed run record and no run is left ``running``;
* memory did not grow night over night: the peak RSS of each night's process
  is printed, and the median of the last 5 nights must be at most 1.2x the
  median of the first 5 (incremental nights only).

    python benchmarks/soak.py                  # SQLite, 200,000 orders, 20 nights
    python benchmarks/soak.py --quick          # 20,000 orders, 10 nights
    python benchmarks/soak.py --db postgres --orders 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
from pathlib import Path

from _children import child_env, drop_database, fresh_database, manage, nightly_log, run_child

PG_SOAK_DB = f"dw_bench_soak_{os.getpid()}"  # per run: two runs at once must not share it
#: peak RSS of the last nights / first nights may not exceed this
RSS_GROWTH_LIMIT = 1.2

NEW_DATA = """
import sys, datetime as dt, django
django.setup()
import numpy as np, pandas as pd
from decimal import Decimal
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from dw_analytics.load.models import write_model
from dw_analytics.sales.demo import demo_data
from dw_analytics.sales.models import Cliente, FonteExterna, Pedido, Produto
n_new, n_updated, night = (int(a) for a in sys.argv[1:4])
now = timezone.now()
stamp = pd.Timestamp(now).as_unit("us")
with transaction.atomic():
    last = Pedido.objects.order_by("-id").values_list("id", flat=True).first()
    new = demo_data(n_new, seed=night, end=timezone.localdate()).pedidos
    n_clients, n_products = Cliente.objects.count(), Produto.objects.count()
    new = new.assign(id=np.arange(last + 1, last + 1 + n_new), criado_em=stamp, atualizado_em=stamp)
    new["cliente_id"] = (new["cliente_id"] - 1) % n_clients + 1
    new["produto_id"] = (new["produto_id"] - 1) % n_products + 1
    write_model(new, Pedido, mode="append")
    # Updates and a deletion spread over the whole history (touching old months too).
    step = max(last // max(n_updated, 1), 1)
    updated = list(range(1 + night % step, last + 1, step))[:n_updated]
    Pedido.objects.filter(id__in=updated).update(total=F("total") + Decimal("1.11"), atualizado_em=now)
    deleted = Pedido.objects.filter(id__gte=(night * 7919) % last).order_by("id").values_list("id", flat=True).first()
    Pedido.objects.filter(id=deleted).delete()
    fontes = pd.DataFrame({
        "id_externo": [f"soak-{night}-{i}" for i in range(100)],
        "valor": [Decimal(i).scaleb(-2) + Decimal(night) for i in range(100)],
        "data": [now] * 100,
    })
    write_model(fontes, FonteExterna, mode="append")
    if night % 4 == 2:  # a price change (a new dim_product version) and a customer who moved, saved by the ORM
        product = Produto.objects.get(id=night % n_products + 1)
        product.preco += Decimal("0.50")
        product.save()
        client = Cliente.objects.get(id=night % n_clients + 1)
        client.cidade = f"Cidade {night}"
        client.save()
print(n_new, len(updated), 1)
"""

CRASHING_NIGHT = """
import os, signal, sys, django
django.setup()
from dw_analytics.pipelines import star_schema
how = sys.argv[1]
if how == "kill":
    original = star_schema.write_model
    def killed_while_loading(*args, **kwargs):
        original(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)  # dies inside the warehouse transaction
    star_schema.write_model = killed_while_loading
else:
    original = star_schema.StarSchemaPipeline.load_aggregates
    def failing(*args, **kwargs):
        original(*args, **kwargs)
        raise OSError("soak: injected failure after the aggregates were written")
    star_schema.StarSchemaPipeline.load_aggregates = failing
from django.core.management import call_command
call_command("run_pipeline", "nightly", "--json", "--quiet")
"""

STATE = """
import hashlib, json, django
django.setup()
from django.db import connection
from decimal import Decimal
from dw_analytics.load.parquet import read_snapshot
from dw_analytics.sales.models import Pedido
from dw_analytics.warehouse.models import (DimCategory, DimCustomer, DimProduct, FactSales, PipelineRun,
    SalesByCategory, SalesByCategoryMonth)

def digest(queryset):
    h = hashlib.sha256()
    n = 0
    for row in queryset.values_list().iterator(chunk_size=50_000):
        h.update(repr(row).encode())
        n += 1
    return f"{n} rows sha256 {h.hexdigest()[:16]}"

def totals(queryset, *fields):
    # Summed in Python from Django's Decimals: SQLite keeps decimals as REAL, so its SUM is inexact.
    sums, n = [Decimal(0)] * len(fields), 0
    for row in queryset.values_list(*fields).iterator(chunk_size=50_000):
        sums = [a + b for a, b in zip(sums, row)]
        n += 1
    return [str(n), *(str(v) for v in sums)]

def rows(queryset, *fields):
    return [repr(row) for row in queryset.values_list(*fields)]

fact = totals(FactSales.objects.all(), "total", "lucro")
source = totals(Pedido.objects.all(), "total")
state = {
    "fact": digest(FactSales.objects.order_by("order_id")),
    "fact_sql": fact,
    "source_sql": source,
    "by_category": rows(SalesByCategory.objects.order_by("categoria_id"),
        "categoria_id", "categoria", "total_vendas", "receita", "valor_medio", "lucro", "margem"),
    "by_month": rows(SalesByCategoryMonth.objects.order_by("month_key", "category_key"),
        "month_key", "category_key", "categoria", "total_vendas", "quantidade", "receita", "lucro"),
    "products": digest(DimProduct.objects.order_by("product_key")),
    "customers": digest(DimCustomer.objects.order_by("pk")),
    "categories": digest(DimCategory.objects.order_by("pk")),
}
published = str(sum(read_snapshot("powerbi", "fact_sales", columns=["total"])["total"], Decimal(0)))
# The published dimensions (rewritten or carried over by hard link) show the warehouse's.
compared = {"dim_customer": (DimCustomer, "customer_key", "cidade"), "dim_product": (DimProduct, "product_key", "is_current"),
            "dim_category": (DimCategory, "category_key", "categoria")}
stale_dimensions = [
    name for name, (model, key, column) in compared.items()
    if sorted(map(tuple, read_snapshot("powerbi", name, columns=[key, column]).to_numpy().tolist()))
    != sorted(model.objects.values_list(key, column))
]
runs = {s: PipelineRun.objects.filter(pipeline="nightly", status=s).count() for s in ("succeeded", "failed", "running")}
print(json.dumps({"state": state, "published_total": published, "stale_dimensions": stale_dimensions, "runs": runs}))
"""


def crash(env: dict[str, str], how: str) -> int:
    code, _, _, _ = run_child([sys.executable, "-c", CRASHING_NIGHT, how], env, may_fail=True)
    expected = -signal.SIGKILL if how == "kill" else 1
    assert code == expected, f"the {how} crash ended with exit code {code}, expected {expected}"
    return code


def state(env: dict[str, str]) -> dict:
    return json.loads(run_child([sys.executable, "-c", STATE], env)[3])


class _Lines(list):
    """The report's lines, printed as they come (a soak run is long)."""

    def append(self, line: str) -> None:
        print(line, flush=True)
        super().append(line)


def soak(backend: str, orders: int, runs: int) -> list[str]:
    lines, failures = _Lines(), []
    with tempfile.TemporaryDirectory(prefix="dw-soak-") as tmp:
        folder = Path(tmp)
        env = child_env(fresh_database(backend, folder, PG_SOAK_DB), folder, DW_WATERMARK_LAG_S="0")
        try:
            run_child(manage("migrate", "-v", "0"), env)
            run_child(manage("generate_demo_data", "--orders", str(orders), "--seed", "1"), env)
            seconds, peak, _ = nightly_log(env)
            lines.append(f"soak {backend} {orders:,} orders: initial build {seconds:.1f} s, peak {peak:.0f} MB")
            peaks, crashes = [], 0
            for number in range(1, runs + 1):
                new = run_child(
                    [
                        sys.executable,
                        "-c",
                        NEW_DATA,
                        str(max(orders // 100, 1)),
                        str(max(orders // 1000, 1)),
                        str(number),
                    ],
                    env,
                )[3]
                n_new, n_updated, n_deleted = new.split()
                crashed = ""
                if number % 5 == 0:
                    how = "kill" if (number // 5) % 2 else "exception"
                    code = crash(env, how)
                    crashes += 1
                    crashed = f", first attempt crashed ({how}, exit {code}) and was rerun"
                seconds, peak, log = nightly_log(env)
                peaks.append(peak)
                lines.append(
                    f"  night {number:2d}: +{n_new} new, {n_updated} updated, {n_deleted} deleted orders -> "
                    f"{log['n_inserted']} inserted, {log['n_updated']} updated, {log['n_deleted']} deleted rows; "
                    f"{log['duration_s']:.2f} s in the pipeline ({seconds:.1f} s process), peak RSS {peak:.0f} MB{crashed}"
                )
            incremental = state(env)
            seconds, _, _ = nightly_log(env, "mode=full")
            full = state(env)
        finally:
            drop_database(backend, PG_SOAK_DB)
    same = incremental["state"] == full["state"]
    lines.append(
        f"soak {backend}: after {runs} nights ({crashes} crashes) the warehouse "
        f"{'EQUALS' if same else 'DIFFERS FROM'} a full refresh ({seconds:.1f} s): fact {full['state']['fact']}, "
        f"{len(full['state']['by_month'])} monthly and {len(full['state']['by_category'])} category aggregate rows compared"
    )
    for key in full["state"]:
        mine, theirs = incremental["state"][key], full["state"][key]
        if mine == theirs:
            continue
        if isinstance(mine, list) and key in ("by_category", "by_month"):
            differing = [(a, b) for a, b in zip(mine, theirs, strict=False) if a != b][:3]
            failures.append(
                f"{key}: {len(mine)} vs {len(theirs)} rows; first differences (incremental, full): {differing}"
            )
        else:
            failures.append(f"{key}: incremental {mine} != full {theirs}")
    fact_rows, fact_total, _ = incremental["state"]["fact_sql"]
    source_rows, source_total = incremental["state"]["source_sql"]
    if (fact_rows, fact_total) != (source_rows, source_total):
        failures.append(f"fact ({fact_rows} rows, {fact_total}) != orders ({source_rows} rows, {source_total})")
    if incremental["published_total"] != fact_total:
        failures.append(f"published snapshot total {incremental['published_total']} != warehouse {fact_total}")
    if incremental["stale_dimensions"]:
        failures.append(f"published dimensions differ from the warehouse's: {incremental['stale_dimensions']}")
    runs_seen = incremental["runs"]
    lines.append(
        f"soak {backend}: runs recorded {runs_seen['succeeded']} succeeded, {runs_seen['failed']} failed, "
        f"{runs_seen['running']} left running; published fact total {incremental['published_total']} = warehouse {fact_total}, "
        f"published dimensions {'differ' if incremental['stale_dimensions'] else 'equal the warehouse'}"
    )
    if runs_seen["failed"] != crashes or runs_seen["running"]:
        failures.append(f"expected {crashes} failed and 0 running runs, got {runs_seen}")
    window = min(5, len(peaks) // 2)
    first, last = statistics.median(peaks[:window]), statistics.median(peaks[-window:])
    lines.append(
        f"soak {backend}: peak RSS per night median of first {window} {first:.0f} MB, last {window} {last:.0f} MB "
        f"= {last / first:.2f}x (goal <= {RSS_GROWTH_LIMIT}x); all nights: {', '.join(f'{p:.0f}' for p in peaks)}"
    )
    if last > RSS_GROWTH_LIMIT * first:
        failures.append(f"peak RSS grew {last / first:.2f}x")
    for failure in failures:
        lines.append(f"  FAILED: {failure}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rows", type=int, help="alias of --orders (the benchmarks' common option)")
    parser.add_argument("--quick", action="store_true", help="20,000 orders and 10 nights (CI smoke run)")
    args = parser.parse_args()
    orders = 20_000 if args.quick else (args.rows or args.orders)
    runs = 10 if args.quick else args.runs
    print(f"# soak benchmark on {platform.node()} ({os.cpu_count()} cores), Python {platform.python_version()}")
    lines = soak(args.db, orders, runs)
    if any("FAILED" in line for line in lines):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
