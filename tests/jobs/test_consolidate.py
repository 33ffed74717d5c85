"""consolidate: branch files in mixed encodings and separators, each loaded once, bad rows quarantined."""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal

import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from pandas.testing import assert_frame_equal

from dw_analytics.jobs.consolidate import consolidate, file_settings
from dw_analytics.jobs.exceptions import ConsolidationError
from dw_analytics.ops.models import ConsolidatedFile, VendaFilial
from dw_analytics.warehouse.models import PipelineRun, QuarantinedRow

MAPPING = """
source_field = "arquivo_origem"

[filename]
pattern = "vendas_(?P<filial>[A-Z]{2}[0-9]{2})_"

[[files]]
match = "vendas_RJ*"
sep = ";"
decimal = ","
encoding = "auto"
[files.columns]
"Nota" = "numero_nota"
"Item" = "item"
"Data" = "data_venda"
"Código" = "produto_codigo"
"Descrição" = "descricao"
"Qtd" = "quantidade"
"Unitário" = "valor_unitario"
"Total" = "valor_total"
"Observação" = ""
[files.dates]
data_venda = "%d/%m/%Y"

[[files]]
match = "vendas_MG*"
sep = "auto"
decimal = ","
thousands = "."
[files.columns]
"nota" = "numero_nota"
"data" = "data_venda"
"sku" = "produto_codigo"
"produto" = "descricao"
"qtd" = "quantidade"
"preco" = "valor_unitario"
"total" = "valor_total"
[files.dates]
data_venda = "%d/%m/%Y"
"""

SP = (
    "numero_nota,item,data_venda,produto_codigo,descricao,quantidade,valor_unitario,valor_total\n"
    "0001,1,2024-01-05,P1,Café,2,10.50,21.00\n"
    "0001,2,2024-01-05,P2,Açúcar,1,x,5.00\n"  # bad unit price: quarantined (line 3)
    "0002,1,2024-01-06,P3,Pão,0.5,8.00,4.00\n"
)
RJ = (
    "Nota;Item;Data;Código;Descrição;Qtd;Unitário;Total;Observação\n"
    "9001;1;05/01/2024;P1;Pão de queijo;1,5;4,00;6,00;ok\n"
    "9002;1;07/01/2024;P4;Açaí;2;12,90;25,80;\n"
)
MG = "nota;data;sku;produto;qtd;preco;total\n7001;31/01/2024;P9;Geladeira;1;3.499,90;3.499,90\n"


@pytest.fixture
def branch_files(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "vendas_SP01_2024-01.csv").write_text(SP, encoding="utf-8")
    (folder / "vendas_RJ01_2024-01.csv").write_bytes(RJ.encode("cp1252"))
    (folder / "vendas_MG01_2024-01.csv").write_bytes(MG.encode("utf-8-sig"))
    mapping = tmp_path / "filiais.toml"
    mapping.write_text(MAPPING, encoding="utf-8")
    return folder, mapping


def _vendas() -> pd.DataFrame:
    fields = [
        "filial",
        "numero_nota",
        "item",
        "data_venda",
        "produto_codigo",
        "descricao",
        "quantidade",
        "valor_unitario",
        "valor_total",
        "arquivo_origem",
    ]
    return pd.DataFrame(list(VendaFilial.objects.order_by("filial", "numero_nota", "item").values(*fields)))


@pytest.mark.django_db
def test_mixed_encodings_and_separators_are_normalised_and_each_file_loads_once(branch_files):
    folder, mapping = branch_files

    report = consolidate(str(folder / "*.csv"), "ops.VendaFilial", mapping=mapping)

    assert [(f.path.rsplit("/", 1)[-1], f.status, f.n_rows, f.n_errors) for f in report.files] == [
        ("vendas_MG01_2024-01.csv", "loaded", 1, 0),
        ("vendas_RJ01_2024-01.csv", "loaded", 2, 0),
        ("vendas_SP01_2024-01.csv", "loaded", 2, 1),
    ]
    D = Decimal
    expected = pd.DataFrame(
        {
            "filial": ["MG01", "RJ01", "RJ01", "SP01", "SP01"],
            "numero_nota": ["7001", "9001", "9002", "0001", "0002"],
            "item": [1, 1, 1, 1, 1],
            "data_venda": [
                dt.date(2024, 1, 31),
                dt.date(2024, 1, 5),
                dt.date(2024, 1, 7),
                dt.date(2024, 1, 5),
                dt.date(2024, 1, 6),
            ],
            "produto_codigo": ["P9", "P1", "P4", "P1", "P3"],
            "descricao": ["Geladeira", "Pão de queijo", "Açaí", "Café", "Pão"],
            "quantidade": [D("1.000"), D("1.500"), D("2.000"), D("2.000"), D("0.500")],
            "valor_unitario": [D("3499.90"), D("4.00"), D("12.90"), D("10.50"), D("8.00")],
            "valor_total": [D("3499.90"), D("6.00"), D("25.80"), D("21.00"), D("4.00")],
            "arquivo_origem": [
                "vendas_MG01_2024-01.csv",
                "vendas_RJ01_2024-01.csv",
                "vendas_RJ01_2024-01.csv",
                "vendas_SP01_2024-01.csv",
                "vendas_SP01_2024-01.csv",
            ],
        }
    )
    assert_frame_equal(_vendas(), expected)
    records = {r.path.rsplit("/", 1)[-1]: r for r in ConsolidatedFile.objects.all()}
    assert (records["vendas_RJ01_2024-01.csv"].encoding, records["vendas_RJ01_2024-01.csv"].separator) == (
        "cp1252",
        ";",
    )
    assert records["vendas_MG01_2024-01.csv"].separator == ";"
    sp_run = PipelineRun.objects.get(pk=report.files[2].run_id)
    assert (sp_run.pipeline, sp_run.n_errors, sp_run.n_inserted) == ("consolidate", 1, 2)
    bad = QuarantinedRow.objects.get(run=sp_run)
    assert (bad.line, bad.column, bad.value) == (3, "valor_unitario", "x")

    # the same content under another name is skipped, and so is everything on a rerun
    shutil.copy(folder / "vendas_RJ01_2024-01.csv", folder / "vendas_RJ01_2024-01_reenvio.csv")
    again = consolidate(str(folder / "*.csv"), "ops.VendaFilial", mapping=mapping)

    assert [f.status for f in again.files] == ["skipped"] * 4
    assert again.summary() == "4 files: 0 loaded, 4 skipped (already loaded), 0 failed; 0 rows loaded, 0 quarantined"
    assert VendaFilial.objects.count() == 5


@pytest.mark.django_db
def test_a_file_with_unmapped_columns_fails_alone_and_the_command_says_so(branch_files, capsys):
    folder, mapping = branch_files
    (folder / "vendas_BA01_2024-01.csv").write_text("nota,valor\n1,2\n", encoding="utf-8")

    with pytest.raises(CommandError, match="1 file"):
        call_command("consolidate", str(folder / "*.csv"), "--to", "ops.VendaFilial", "--mapping", str(mapping))

    out = capsys.readouterr().out
    assert "failed   " in out and "'nota', 'valor' map to no field of ops.VendaFilial" in out
    assert "4 files: 3 loaded, 0 skipped (already loaded), 1 failed; 5 rows loaded, 1 quarantined" in out
    assert not VendaFilial.objects.filter(arquivo_origem__startswith="vendas_BA").exists()


def test_file_settings_take_the_first_matching_override():
    rules = {"sep": ",", "columns": {"a": "b"}, "files": [{"match": "*rj*", "sep": ";", "columns": {"c": "d"}}]}
    assert file_settings(rules, "x_rj.csv")["sep"] == ";"
    assert file_settings(rules, "x_rj.csv")["columns"] == {"a": "b", "c": "d"}
    assert file_settings(rules, "x_sp.csv")["columns"] == {"a": "b"}


@pytest.mark.django_db
def test_an_unknown_mapping_key_is_refused(tmp_path):
    (tmp_path / "a.csv").write_text("x\n1\n")
    with pytest.raises(ConsolidationError, match="unknown key"):
        consolidate(str(tmp_path / "*.csv"), "ops.VendaFilial", mapping={"separator": ";"})
