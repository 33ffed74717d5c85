"""Exports: exact round trip per format, CSV options, formula escaping, flat memory, the command."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from pandas.testing import assert_frame_equal

from dw_analytics.extract.csv import read_csv_chunks
from dw_analytics.extract.excel import read_excel
from dw_analytics.extract.queryset import read_queryset
from dw_analytics.jobs.exceptions import UnknownSourceError
from dw_analytics.jobs.export import export_source
from dw_analytics.load.exceptions import OutputPathError
from dw_analytics.sales.models import Categoria, Cliente, Pedido
from dw_analytics.sales.services import demo_data_create
from dw_analytics.warehouse.models import PipelineRun
from tests.dbutil import ROOT, child_env

ZONE = "America/Sao_Paulo"
ORDER_FIELDS = ["id", "cliente_id", "produto_id", "quantidade", "total", "custo", "criado_em"]


@pytest.fixture
def orders(db):
    demo_data_create(orders=3_000, seed=7)
    # a few order totals that float would get wrong, and the largest the field holds
    Pedido.objects.filter(pk=1).update(total=Decimal("0.10"), custo=Decimal("0.20"))
    Pedido.objects.filter(pk=2).update(total=Decimal("999999999999.99"))
    return read_queryset(Pedido.objects.order_by("pk"), ORDER_FIELDS)


def _csv_frame(path, sep=","):
    with read_csv_chunks(path, sep=sep) as probe:
        columns = list(probe.columns)
    frames = list(read_csv_chunks(path, sep=sep, dtypes=dict.fromkeys(columns, "string")))
    return pd.concat(frames, ignore_index=True)


def test_parquet_export_round_trips_exactly(orders, output_dir):
    result = export_source("sales.Pedido", "parquet", "pedidos.parquet", fields=ORDER_FIELDS, chunksize=700)

    assert result.n_rows == 3_000
    table = pq.read_table(result.path)
    assert table.schema.field("total").type == pa.decimal128(19, 2)
    back = table.to_pandas(types_mapper={pa.decimal128(19, 2): pd.ArrowDtype(pa.decimal128(14, 2))}.get)
    back["criado_em"] = back["criado_em"].dt.tz_localize(ZONE).astype(orders["criado_em"].dtype)
    back[["total", "custo"]] = back[["total", "custo"]].astype(orders["total"].dtype)
    assert_frame_equal(back, orders)


def test_csv_export_round_trips_exactly_with_semicolon_decimal_comma_and_bom(orders, output_dir):
    result = export_source(
        "sales.Pedido", "csv", "pedidos.csv", fields=ORDER_FIELDS, sep=";", decimal_comma=True, bom=True, chunksize=700
    )

    raw = result.path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf" + b'"id";"cliente_id"')
    text = _csv_frame(result.path, sep=";")
    assert len(text) == 3_000
    assert text.loc[0, "total"] == "0,10" and text.loc[1, "total"] == "999999999999,99"
    back = pd.DataFrame(
        {
            **{c: text[c].astype("int64") for c in ["id", "cliente_id", "produto_id", "quantidade"]},
            **{
                c: pd.Series(
                    pa.array(text[c].str.replace(",", ".").to_numpy(object)).cast(pa.decimal128(14, 2)),
                    dtype=orders[c].dtype,
                )
                for c in ["total", "custo"]
            },
            "criado_em": pd.to_datetime(text["criado_em"], format="ISO8601", utc=True)
            .dt.tz_convert(ZONE)
            .astype(orders["criado_em"].dtype),
        }
    )
    assert_frame_equal(back, orders)


def test_excel_export_round_trips_exactly(orders, output_dir):
    result = export_source("sales.Pedido", "xlsx", "pedidos.xlsx", fields=ORDER_FIELDS, chunksize=700, sheet="Pedidos")

    back = read_excel(result.path, "Pedidos", decimals={"total": (14, 2), "custo": (14, 2)})
    back = back.astype({c: "int64" for c in ["id", "cliente_id", "produto_id", "quantidade"]})
    back[["total", "custo"]] = back[["total", "custo"]].astype(orders["total"].dtype)
    back["criado_em"] = back["criado_em"].astype(orders["criado_em"].dtype)
    assert_frame_equal(back, orders)


def test_text_that_looks_like_a_formula_is_escaped_in_csv_and_stays_text_in_excel(db, output_dir):
    Cliente.objects.create(nome='=HYPERLINK("http://x")', email="a@x.com", cidade="-Recife", uf="PE")
    Cliente.objects.create(nome="Ana", email="b@x.com", cidade="Natal", uf="RN")

    csv = export_source("sales.Cliente", "csv", "c.csv", fields=["nome", "cidade", "uf"])
    xlsx = export_source("sales.Cliente", "xlsx", "c.xlsx", fields=["nome", "cidade", "uf"])

    assert _csv_frame(csv.path)["nome"].tolist() == ['\'=HYPERLINK("http://x")', "Ana"]
    assert _csv_frame(csv.path)["cidade"].tolist() == ["'-Recife", "Natal"]
    sheet = read_excel(xlsx.path)
    assert sheet["nome"].tolist() == ['=HYPERLINK("http://x")', "Ana"]


def test_filters_fields_registered_queries_and_warehouse_tables(orders, output_dir):
    cutoff = orders["criado_em"].iloc[1500]
    result = export_source(
        "pedidos_detalhados",
        "parquet",
        "d.parquet",
        filters={"criado_em__gte": cutoff.isoformat(), "cliente__uf": "SP"},
    )
    expected = Pedido.objects.filter(criado_em__gte=cutoff, cliente__uf="SP").count()
    table = pq.read_table(result.path)
    assert table.num_rows == expected > 0
    assert table.column_names[:5] == ["id", "criado_em", "cliente_id", "cliente__nome", "cliente__uf"]
    assert set(table.column("cliente__uf").to_pylist()) == {"SP"}

    assert export_source("fact_sales", "csv", "f.csv").n_rows == 0  # a warehouse table, by its snapshot name
    assert export_source("dw_fact_sales", "csv", "f2.csv").n_rows == 0
    daily = export_source("vendas_por_dia", "csv", "daily.csv")  # SQL on its own connection
    assert daily.n_rows == 0
    assert daily.path.read_text().startswith('"dia","category_key","pedidos"')


def test_every_export_is_a_recorded_run(orders, output_dir):
    result = export_source("sales.Categoria", "csv", "cat.csv", triggered_by="ana")
    run = PipelineRun.objects.get(pk=result.run_id)
    assert (run.pipeline, run.status, run.n_processed, run.triggered_by) == (
        "export",
        "succeeded",
        Categoria.objects.count(),
        "ana",
    )
    assert run.parameters["source"] == "sales.Categoria"


def test_unknown_sources_and_paths_outside_the_output_folder_are_refused(db, output_dir):
    with pytest.raises(UnknownSourceError, match="pedidos_detalhados"):
        export_source("vendas", "csv", "x.csv")
    with pytest.raises(OutputPathError):
        export_source("sales.Cliente", "csv", "../escape.csv")


def test_the_export_command_writes_the_file_atomically(orders, output_dir, capsys):
    call_command(
        "export", "sales.Pedido", "--to", "cmd/pedidos.csv", "--filter", "quantidade=1", "--fields", "id,total"
    )
    out = capsys.readouterr().out
    expected = Pedido.objects.filter(quantidade=1).count()
    assert f"exported {expected:,} rows of sales.Pedido" in out
    files = sorted(p.name for p in (output_dir / "cmd").iterdir())
    assert files == ["pedidos.csv"]  # no temporary left behind
    assert len(_csv_frame(output_dir / "cmd" / "pedidos.csv")) == expected


_MEASURE = """
import json
import dw_analytics as dw
dw.setup()
from dw_analytics.jobs.export import export_source

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1])

results = {}
for fmt in ("csv", "parquet"):
    export_source("sales.Categoria", fmt, f"warm.{fmt}")  # imports and first-use allocations
    for n in (20_000, 200_000):
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak (VmHWM) to the current RSS
        before = status("VmRSS:")
        result = export_source(
            "sales.Pedido", fmt, f"mem-{n}.{fmt}", filters={"id__lte": n}, chunksize=10_000,
            row_group_size=20_000,
        )
        results[f"{fmt} {n}"] = {"rows": result.n_rows, "growth_kb": status("VmHWM:") - before}
print(json.dumps(results))
"""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_memory_stays_flat_from_20k_to_200k_rows(tmp_path):
    demo_data_create(orders=200_000, seed=3, years=1)
    env = child_env(DW_OUTPUT_DIR=str(tmp_path), DW_PROGRESS="0")

    done = subprocess.run(
        [sys.executable, "-c", _MEASURE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )

    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for fmt in ("csv", "parquet"):
        small, large = results[f"{fmt} 20000"], results[f"{fmt} 200000"]
        assert (small["rows"], large["rows"]) == (20_000, 200_000)
        # The export's own peak (above the RSS it started from) at 10x the rows. What little
        # grows is SQLite's page cache (capped at 64 MB by the settings), not our buffers.
        extra_mb = (large["growth_kb"] - small["growth_kb"]) / 1024
        assert extra_mb < 25, f"{fmt}: 10x the rows needed {extra_mb:.1f} MB more at peak ({small}, {large})"


def test_datetimes_are_written_with_their_offset(db, output_dir):
    categoria = Categoria.objects.create(nome="X")
    produto = categoria.produtos.create(nome="P", preco=1, custo=1)
    cliente = Cliente.objects.create(nome="A", email="a@a.com", cidade="C", uf="SP")
    Pedido.objects.create(
        cliente=cliente,
        produto=produto,
        quantidade=1,
        total=1,
        custo=1,
        criado_em=dt.datetime(2024, 1, 31, 23, 30, tzinfo=dt.UTC),
    )
    result = export_source("sales.Pedido", "csv", "p.csv", fields=["criado_em"])
    assert _csv_frame(result.path)["criado_em"].tolist() == ["2024-01-31T20:30:00.000000-0300"]


def test_the_export_pipeline_runs_from_run_pipeline_with_text_parameters(db, output_dir, capsys):
    Categoria.objects.create(nome="Livros")
    call_command(
        "run_pipeline", "export", "--param", "source=sales.Categoria", "--param", "format=csv",
        "--param", "path=cat.csv", "--param", "fields=id,nome", "--param", 'filters={"nome": "Livros"}',
        "--param", "bom=false",
    )  # fmt: skip
    assert _csv_frame(output_dir / "cat.csv")["nome"].tolist() == ["Livros"]
    assert _csv_frame(output_dir / "cat.csv").columns.tolist() == ["id", "nome"]
