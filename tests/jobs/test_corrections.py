"""Batch corrections: an exact dry-run report, then applied, then reverted to the original state."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest
from django.core.management import call_command
from pandas.testing import assert_frame_equal

from dw_analytics.jobs.corrections import apply_corrections, plan_corrections, revert_corrections
from dw_analytics.jobs.exceptions import CorrectionError, CorrectionsRejected, RevertConflict
from dw_analytics.ops.models import CorrectionRun
from dw_analytics.sales.models import Categoria, Cliente, Destino, Pedido, Produto
from dw_analytics.warehouse.models import PipelineRun, QuarantinedRow

UTC = dt.UTC


@pytest.fixture
def shop(db):
    categoria = Categoria.objects.create(nome="Livros")
    produto = Produto.objects.create(nome="Livro", categoria=categoria, preco=Decimal("50.00"), custo=Decimal("20.00"))
    clientes = [
        Cliente.objects.create(nome="Ana", email="ana@x.com", cidade="Recife", uf="PE"),
        Cliente.objects.create(nome="Bia", email="bia@x.com", cidade="Natal", uf="RN"),
    ]
    pedidos = [
        Pedido.objects.create(
            cliente=clientes[i % 2], produto=produto, quantidade=i + 1, total=Decimal("50.00") * (i + 1),
            custo=Decimal("20.00") * (i + 1), criado_em=dt.datetime(2024, 5, 1 + i, 12, tzinfo=UTC),
        )
        for i in range(4)
    ]  # fmt: skip
    return {"produto": produto, "clientes": clientes, "pedidos": pedidos}


def _pedidos_state() -> pd.DataFrame:
    rows = Pedido.objects.order_by("id").values("id", "cliente_id", "quantidade", "total", "criado_em")
    return pd.DataFrame(list(rows))


def test_dry_run_reports_updates_with_diffs_and_rejections_with_reasons_and_writes_nothing(shop, tmp_path):
    p = [o.id for o in shop["pedidos"]]
    c = [o.id for o in shop["clientes"]]
    missing_id = max(p) + 100
    path = tmp_path / "fix.csv"
    path.write_text(
        "id;cliente_id;quantidade;total\n"
        f"{p[0]};{c[0]};1;50,00\n"  # unchanged
        f"{p[1]};{c[0]};2;99,90\n"  # cliente and total change
        f"{p[2]};{c[0]};-3;150,00\n"  # negative quantity
        f"{p[3]};999999;4;1,234\n"  # unknown customer, too many places
        f"{missing_id};{c[0]};1;1,00\n"  # unknown order id
        f"x;{c[0]};1;1,00\n",  # not an id
        encoding="utf-8",
    )
    before = _pedidos_state()

    report = plan_corrections(path, "sales.Pedido", ["id"], sep=";", decimal=",")

    assert (report.n_rows, report.n_inserted, report.n_updated, report.n_unchanged, report.n_rejected) == (
        6,
        0,
        1,
        1,
        4,
    )
    expected_diff = pd.DataFrame(
        {
            "id": [p[1], p[1]],
            "column": ["cliente_id", "total"],
            "before": [str(c[1]), "100.00"],
            "after": [str(c[0]), "99.90"],
        }
    )
    assert_frame_equal(report.updated, expected_diff, check_dtype=False)
    expected_rejected = pd.DataFrame(
        {
            "line": [4, 5, 5, 6, 7],
            "key": [str(p[2]), str(p[3]), str(p[3]), str(missing_id), "x"],
            "column": ["quantidade", "cliente_id", "total", "id", "id"],
            "value": ["-3", "999999", "1,234", str(missing_id), "x"],
            "reason": [
                "must be zero or positive",
                "no sales.Cliente with this id",
                "more than 2 decimal places",
                "no sales.Pedido with this id",
                "not a whole number",
            ],
        }
    )
    assert_frame_equal(report.rejected, expected_rejected, check_dtype=False)
    assert_frame_equal(_pedidos_state(), before)
    assert not CorrectionRun.objects.exists()


def test_natural_keys_insert_new_rows_then_revert_restores_the_original_state(db, tmp_path, output_dir):
    Destino.objects.create(id_externo="A1", valor=Decimal("10.50"), data=dt.date(2024, 5, 1))
    Destino.objects.create(id_externo="A2", valor=Decimal("3.30"), data=dt.date(2024, 5, 2))
    original = pd.DataFrame(list(Destino.objects.order_by("id_externo").values()))
    frame = pd.DataFrame(
        {
            "id_externo": ["A1", "A2", "A3", "A9", "A9"],
            "valor": ["10.5", "3.35", "7", "1", "2"],
            "data": ["2024-05-01", "2024-05-03", "2024-06-01", "2024-06-01", "2024-06-02"],
        }
    )
    path = tmp_path / "destinos.parquet"
    frame.to_parquet(path)

    report = apply_corrections(path, "sales.Destino", ["id_externo"], triggered_by="ana")

    assert (report.n_inserted, report.n_updated, report.n_unchanged, report.n_rejected) == (1, 1, 1, 2)
    assert report.rejected["reason"].tolist() == ["key appears 2 times in the file"] * 2
    assert report.rejected["line"].tolist() == [4, 5]
    stored = pd.DataFrame(list(Destino.objects.order_by("id_externo").values()))
    expected = pd.DataFrame(
        {
            "id_externo": ["A1", "A2", "A3"],
            "valor": [Decimal("10.50"), Decimal("3.35"), Decimal("7.00")],
            "data": [dt.date(2024, 5, 1), dt.date(2024, 5, 3), dt.date(2024, 6, 1)],
        }
    )
    assert_frame_equal(stored, expected)
    record = CorrectionRun.objects.get()
    assert (record.applied_by, record.n_inserted, record.n_updated, record.n_rejected) == ("ana", 1, 1, 2)
    assert len(record.file_sha256) == 64
    assert (output_dir / record.audit_path / "updated.parquet").exists()
    run = PipelineRun.objects.get(pk=record.run_id)
    assert (run.pipeline, run.status, run.n_inserted, run.n_updated, run.n_errors) == (
        "apply_corrections",
        "succeeded",
        1,
        1,
        2,
    )
    assert QuarantinedRow.objects.filter(run=run).count() == 2

    result = revert_corrections(record.pk, triggered_by="ana")

    assert result == {"restored": 1, "deleted": 1, "conflicts": 0}
    assert_frame_equal(pd.DataFrame(list(Destino.objects.order_by("id_externo").values())), original)
    record.refresh_from_db()
    assert record.status == "reverted"
    with pytest.raises(RevertConflict, match="already reverted"):
        revert_corrections(record.pk)


def test_revert_refuses_when_a_corrected_row_changed_since(db, tmp_path, output_dir):
    Destino.objects.create(id_externo="A1", valor=Decimal("1.00"), data=dt.date(2024, 5, 1))
    path = tmp_path / "fix.csv"
    path.write_text("id_externo,valor\nA1,2.00\n")
    report = apply_corrections(path, "sales.Destino", ["id_externo"])
    Destino.objects.filter(pk="A1").update(valor=Decimal("5.00"))  # someone edits it later

    with pytest.raises(RevertConflict, match="1 row"):
        revert_corrections(report.correction_id)
    assert Destino.objects.get().valor == Decimal("5.00")

    revert_corrections(report.correction_id, force=True)
    assert Destino.objects.get().valor == Decimal("1.00")


def test_applied_corrections_update_pedidos_from_excel_and_revert(shop, tmp_path, output_dir):
    p = [o.id for o in shop["pedidos"]]
    path = tmp_path / "fix.xlsx"
    pd.DataFrame(
        {"id": [p[0], p[2]], "total": [55.5, 150.0], "criado_em": ["2024-05-01T10:00:00-03:00", "2024-05-03 10:00"]}
    ).to_excel(path, index=False)
    before = _pedidos_state()

    report = apply_corrections(path, "sales.Pedido", ["id"])

    assert (report.n_updated, report.n_unchanged, report.n_rejected) == (2, 0, 0)
    assert report.updated["after"].tolist() == ["55.50", "2024-05-01 10:00:00-03:00", "2024-05-03 10:00:00-03:00"]
    assert Pedido.objects.get(pk=p[0]).total == Decimal("55.50")
    assert Pedido.objects.get(pk=p[2]).criado_em == dt.datetime(2024, 5, 3, 13, tzinfo=UTC)

    revert_corrections(report.correction_id)
    assert_frame_equal(_pedidos_state(), before)


def test_strict_mode_writes_nothing_when_a_row_is_rejected(shop, tmp_path, output_dir):
    path = tmp_path / "fix.csv"
    path.write_text(f"id,quantidade\n{shop['pedidos'][0].id},7\n{shop['pedidos'][1].id},-1\n")
    with pytest.raises(CorrectionsRejected, match="1 row"):
        apply_corrections(path, "sales.Pedido", ["id"], strict=True)
    assert Pedido.objects.get(pk=shop["pedidos"][0].id).quantidade == 1
    assert not CorrectionRun.objects.exists()


def test_unique_and_choice_constraints_are_checked_before_writing(shop, tmp_path):
    ana, bia = shop["clientes"]
    path = tmp_path / "clientes.csv"
    path.write_text(f"id,email,uf\n{ana.id},bia@x.com,SP\n{bia.id},novo@x.com,XX\n")
    report = plan_corrections(path, "sales.Cliente", ["id"])
    assert report.rejected[["line", "column", "reason"]].values.tolist() == [
        [2, "email", "email is already used by another row"],
        [3, "uf", report.rejected["reason"].iloc[1]],
    ]
    assert report.rejected["reason"].iloc[1].startswith("not one of the choices (AC, AL")


def test_a_column_that_is_not_a_field_is_refused_with_the_valid_fields(shop, tmp_path):
    path = tmp_path / "fix.csv"
    path.write_text("id,preco_novo\n1,2\n")
    with pytest.raises(CorrectionError, match="'preco_novo' are not fields of sales.Produto"):
        plan_corrections(path, "sales.Produto", ["id"])


def test_the_command_prints_the_dry_run_report(shop, tmp_path, capsys):
    p = shop["pedidos"][1].id
    path = tmp_path / "fix.csv"
    path.write_text(f"id,quantidade\n{p},5\n")
    call_command("apply_corrections", str(path), "--model", "sales.Pedido", "--key", "id", "--dry-run")
    out = capsys.readouterr().out
    assert "1 rows: 0 inserted, 1 updated, 0 unchanged, 0 rejected" in out
    assert f"{p}" in out and "quantidade" in out and "2 -> 5" in out
    assert Pedido.objects.get(pk=p).quantidade == 2
