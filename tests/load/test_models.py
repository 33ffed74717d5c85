"""write_model: modes, counts, model semantics, validation and atomicity on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pytest
from django.db import connection, transaction
from django.utils import timezone

from dw_analytics.extract.queryset import read_queryset
from dw_analytics.load import models as load_models
from dw_analytics.load.exceptions import LoadValidationError
from dw_analytics.load.models import write_model
from dw_analytics.sales.models import Categoria, Cliente, Destino, Pedido, Produto
from dw_analytics.warehouse.models import SalesByCategory

MONEY = pd.ArrowDtype(pa.decimal128(14, 2))
UTC = dt.UTC

pytestmark = pytest.mark.django_db


def money(*values: str | None) -> pd.Series:
    return pd.Series([None if v is None else Decimal(v) for v in values], dtype=MONEY)


@pytest.fixture
def seed():
    """One category, two products, two customers."""
    cat = Categoria.objects.create(nome="Livros")
    p1 = Produto.objects.create(nome="A", categoria=cat, preco=Decimal("10.00"), custo=Decimal("6.00"))
    p2 = Produto.objects.create(nome="B", categoria=cat, preco=Decimal("20.00"), custo=Decimal("12.00"))
    c1 = Cliente.objects.create(nome="Ana", email="ana@x.br", cidade="Recife", uf="PE")
    c2 = Cliente.objects.create(nome="Bia", email="bia@x.br", cidade="Natal", uf="RN")
    return {"produtos": [p1.pk, p2.pk], "clientes": [c1.pk, c2.pk]}


def pedidos_frame(seed, n: int = 4) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cliente_id": [seed["clientes"][i % 2] for i in range(n)],
            "produto": [seed["produtos"][i % 2] for i in range(n)],
            "quantidade": pd.Series(range(1, n + 1), dtype="int64"),
            "total": money(*[f"{i}.{i:02d}" for i in range(1, n + 1)]),
            "custo": money(*[f"{i}.00" for i in range(1, n + 1)]),
            "criado_em": pd.Series(
                [dt.datetime(2024, 1, i + 1, 12, 30, tzinfo=UTC) for i in range(n)],
                dtype="datetime64[us, UTC]",
            ),
        }
    )


def test_append_inserts_rows_exactly_to_the_cent(seed):
    df = pedidos_frame(seed)
    result = write_model(df, Pedido)
    assert (result.n_inserted, result.n_updated, result.n_deleted) == (4, 0, 0)
    assert result.target == "sales.Pedido"
    rows = list(Pedido.objects.order_by("quantidade").values_list("quantidade", "total", "custo", "criado_em"))
    assert rows == [
        (
            i,
            Decimal(f"{i}.{i:02d}"),
            Decimal(f"{i}.00"),
            dt.datetime(2024, 1, i, 12, 30, tzinfo=UTC),
        )
        for i in range(1, 5)
    ]


def test_replace_deletes_old_rows_and_counts_them(seed):
    write_model(pedidos_frame(seed, 3), Pedido)
    result = write_model(pedidos_frame(seed, 2), Pedido, mode="replace")
    assert (result.n_inserted, result.n_updated, result.n_deleted) == (2, 0, 3)
    assert Pedido.objects.count() == 2


def test_upsert_counts_inserted_updated_and_skips_unchanged_rows():
    Destino.objects.create(id_externo="A", valor=Decimal("1.00"), data=dt.date(2024, 1, 1))
    Destino.objects.create(id_externo="B", valor=Decimal("2.00"), data=dt.date(2024, 1, 2))
    df = pd.DataFrame(
        {
            "id_externo": ["A", "B", "C"],
            "valor": money("1.00", "2.50", "3.00"),
            "data": [dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)],
        }
    )
    result = write_model(df, Destino, mode="upsert", unique_fields=["id_externo"])
    assert (result.n_inserted, result.n_updated, result.n_deleted) == (1, 1, 0)
    assert list(Destino.objects.order_by("pk").values_list("id_externo", "valor", "data")) == [
        ("A", Decimal("1.00"), dt.date(2024, 1, 1)),
        ("B", Decimal("2.50"), dt.date(2024, 1, 2)),
        ("C", Decimal("3.00"), dt.date(2024, 1, 3)),
    ]
    again = write_model(df, Destino, mode="upsert")
    assert (again.n_inserted, again.n_updated) == (0, 0)


def test_append_to_destino_with_character_primary_key_and_sales_by_category_round_trip():
    df = pd.DataFrame(
        {
            "id_externo": ["X-1", "X-2"],
            "valor": money("0.10", "99999999999.99"),
            "data": [dt.date(2024, 2, 29), dt.date(1999, 12, 31)],
        }
    )
    assert write_model(df, Destino).n_inserted == 2
    assert list(Destino.objects.order_by("pk").values_list("id_externo", "valor", "data")) == [
        ("X-1", Decimal("0.10"), dt.date(2024, 2, 29)),
        ("X-2", Decimal("99999999999.99"), dt.date(1999, 12, 31)),
    ]
    sales = sales_frame()
    assert write_model(sales, SalesByCategory, mode="replace").n_inserted == 2
    got = read_queryset(SalesByCategory.objects.order_by("categoria_id"), fields=list(sales.columns))
    assert got["receita"].tolist() == [Decimal("1234.56"), Decimal("0.01")]
    assert got["valor_medio"].tolist() == [Decimal("61.7280"), Decimal("0.0100")]
    assert got["margem"].tolist()[0] == Decimal("0.250000") and pd.isna(got["margem"].tolist()[1])
    assert got["categoria"].tolist() == ["Livros", "Jogos; DROP TABLE x"]


def sales_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "categoria_id": pd.array([1, 2], dtype="Int64"),
            "categoria": pd.Series(["Livros", "Jogos; DROP TABLE x"], dtype=pd.ArrowDtype(pa.string())),
            "total_vendas": pd.Series([20, 1], dtype=pd.ArrowDtype(pa.int32())),
            "receita": pd.Series([Decimal("1234.56"), Decimal("0.01")], dtype=object),
            "valor_medio": pd.Series([Decimal("61.728"), Decimal("0.01")], dtype=pd.ArrowDtype(pa.decimal128(18, 4))),
            "lucro": pd.Series([308.64, 0.0]),
            "margem": pd.Series([Decimal("0.25"), None], dtype=object),
            "atualizado_em": pd.to_datetime(["2024-03-01 08:00", "2024-03-01 08:00"]),
        }
    )


def test_naive_datetimes_are_read_in_settings_time_zone():
    write_model(sales_frame(), SalesByCategory)
    stored = SalesByCategory.objects.get(categoria_id=1).atualizado_em
    # America/Sao_Paulo is UTC-3 in March 2024.
    assert stored == dt.datetime(2024, 3, 1, 11, 0, tzinfo=UTC)


def test_upsert_on_unique_field_that_is_not_the_primary_key_counts_exactly():
    write_model(sales_frame(), SalesByCategory)
    changed = sales_frame()
    changed.loc[1, "receita"] = Decimal("0.02")
    extra = sales_frame().iloc[[0]].assign(categoria_id=pd.array([3], dtype="Int64"))
    df = pd.concat([changed, extra], ignore_index=True)
    result = write_model(df, SalesByCategory, mode="upsert", unique_fields=["categoria_id"])
    assert (result.n_inserted, result.n_updated, result.n_deleted) == (1, 1, 0)
    assert dict(SalesByCategory.objects.values_list("categoria_id", "receita")) == {
        1: Decimal("1234.56"),
        2: Decimal("0.02"),
        3: Decimal("1234.56"),
    }


def test_upsert_bumps_auto_now_only_on_changed_rows(seed):
    old = dt.datetime(2020, 1, 1, tzinfo=UTC)
    df = pedidos_frame(seed, 3).assign(atualizado_em=pd.Series([old] * 3, dtype="datetime64[us, UTC]"))
    write_model(df, Pedido)
    ids = list(Pedido.objects.order_by("id").values_list("id", flat=True))
    upd = pedidos_frame(seed, 3).assign(id=ids)
    upd.loc[2, "quantidade"] = 99
    before = timezone.now()
    result = write_model(upd, Pedido, mode="upsert")
    assert (result.n_inserted, result.n_updated) == (0, 1)
    stamps = list(Pedido.objects.order_by("id").values_list("atualizado_em", flat=True))
    assert stamps[:2] == [old, old]
    assert stamps[2] >= before
    # Explicit values for an auto_now field are written as given.
    assert Pedido.objects.get(id=ids[0]).criado_em == dt.datetime(2024, 1, 1, 12, 30, tzinfo=UTC)


def test_missing_columns_get_defaults_and_auto_now(seed):
    df = pedidos_frame(seed, 2).drop(columns=["criado_em"])
    before = timezone.now()
    write_model(df, Pedido)
    after = timezone.now()
    rows = list(Pedido.objects.values_list("criado_em", "atualizado_em"))
    assert all(before <= c <= after and c == a for c, a in rows)


@pytest.mark.parametrize(
    "frame, message",
    [
        (lambda s: s.assign(desconto=1), "unknown column(s) 'desconto'"),
        (
            lambda s: s.assign(**{'x"); DROP TABLE sales_pedido; --': 1}),
            "unknown column(s) 'x\"); DROP TABLE sales_pedido; --'",
        ),
        (lambda s: s.drop(columns=["total"]), "missing required column(s) 'total'"),
        (
            lambda s: s.assign(total=money("1.00", None, "2.00", None)),
            "column 'total': 2 null value(s) in a non-null field; first offending rows: row 1: <NA>, row 3: <NA>",
        ),
        (
            lambda s: s.assign(
                total=pd.Series(
                    [Decimal(v) for v in ("1.00", "1000000000000.00", "2.00", "3.00")],
                    dtype=pd.ArrowDtype(pa.decimal128(16, 2)),
                )
            ),
            "column 'total': 1 value(s) too large for max_digits=14, decimal_places=2; first offending rows: row 1: Decimal('1000000000000.00')",
        ),
        (
            lambda s: s.assign(
                total=pd.Series([Decimal("1.005"), Decimal("1"), Decimal("2"), Decimal("3")], dtype=object)
            ),
            "column 'total': 1 value(s) with more than 2 decimal places; first offending rows: row 0: Decimal('1.005')",
        ),
        (
            lambda s: s.assign(quantidade=pd.Series(["1", "2", "3", "4"], dtype=object)),
            "column 'quantidade': 4 value(s) of the wrong type (expected integers, dtype object); first offending rows: row 0: '1', row 1: '2'",
        ),
        (
            lambda s: s.assign(quantidade=pd.Series(["1", "2", "3", "4"], dtype="str")),
            "column 'quantidade': 4 value(s) of the wrong type (expected integers, dtype str)",
        ),
        (
            lambda s: s.assign(quantidade=[1, -2, 3, 4]),
            "column 'quantidade': 1 value(s) outside the field's range [0, ",
        ),
        (
            lambda s: s.assign(quantidade=[1.0, 2.5, 3.0, 4.0]),
            "column 'quantidade': 1 non-integer value(s); first offending rows: row 1: np.float64(2.5)",
        ),
        (
            lambda s: s.assign(total=["1.00", "2", "3", "4"]),
            "column 'total': 4 value(s) of the wrong type (expected Decimal values",
        ),
        (
            lambda s: s.assign(total=[0.1 + 0.2, 1.25, 2.0, 3.0]),
            "column 'total': 1 float value(s) not exact at 2 decimal places; first offending rows: row 0: np.float64(0.30000000000000004)",
        ),
        (
            lambda s: s.assign(criado_em=["2024-01-01"] * 4),
            "column 'criado_em': 4 value(s) of the wrong type (expected datetimes",
        ),
        (
            lambda s: s.assign(cliente=s["cliente_id"]),
            "columns 'cliente_id' and 'cliente' both map to field 'cliente'",
        ),
    ],
)
def test_bad_input_is_rejected_before_anything_is_written(seed, frame, message):
    write_model(pedidos_frame(seed, 2), Pedido)
    with pytest.raises(LoadValidationError) as info:
        write_model(frame(pedidos_frame(seed)), Pedido, mode="replace")
    assert message in str(info.value)
    assert str(info.value).startswith("sales.Pedido: ")
    assert Pedido.objects.count() == 2


def test_validation_error_carries_column_and_row_labels(seed):
    df = pedidos_frame(seed).set_index(pd.Index(["a", "b", "c", "d"]))
    df["total"] = money("1.00", None, "2.00", "3.00").set_axis(df.index)
    with pytest.raises(LoadValidationError) as info:
        write_model(df, Pedido)
    assert (info.value.column, info.value.rows, info.value.target) == (
        "total",
        ["b"],
        "sales.Pedido",
    )


def test_decimal_rounding_half_even_is_an_explicit_option():
    df = pd.DataFrame(
        {
            "id_externo": ["a", "b", "c"],
            "valor": pd.Series(
                [Decimal("1.005"), Decimal("1.015"), Decimal("2.5")],
                dtype=pd.ArrowDtype(pa.decimal128(10, 3)),
            ),
            "data": [dt.date(2024, 1, 1)] * 3,
        }
    )
    write_model(df, Destino, decimal_rounding="half_even")
    assert list(Destino.objects.order_by("pk").values_list("valor", flat=True)) == [
        Decimal("1.00"),
        Decimal("1.02"),
        Decimal("2.50"),
    ]


def test_exact_floats_are_accepted_for_decimal_fields():
    df = pd.DataFrame({"id_externo": ["a", "b"], "valor": [1.15, -12345678.91], "data": [dt.date(2024, 1, 1)] * 2})
    write_model(df, Destino)
    assert list(Destino.objects.order_by("pk").values_list("valor", flat=True)) == [
        Decimal("1.15"),
        Decimal("-12345678.91"),
    ]


def test_upsert_rejects_keys_that_are_not_unique_and_duplicate_keys():
    df = pd.DataFrame(
        {
            "id_externo": ["a", "a"],
            "valor": money("1.00", "2.00"),
            "data": [dt.date(2024, 1, 1)] * 2,
        }
    )
    with pytest.raises(
        LoadValidationError,
        match=r"unique_fields \['valor'\] is not the primary key or a unique constraint",
    ):
        write_model(df, Destino, mode="upsert", unique_fields=["valor"])
    with pytest.raises(
        LoadValidationError,
        match=r"1 duplicate key\(s\) in the frame for unique_fields \['id_externo'\]; first offending rows: row 1: 'a'",
    ):
        write_model(df, Destino, mode="upsert", unique_fields=["id_externo"])
    assert Destino.objects.count() == 0


@pytest.mark.parametrize("mode", ["append", "replace", "upsert"])
def test_a_failure_after_half_the_rows_leaves_the_table_unchanged(seed, monkeypatch, mode):
    write_model(pedidos_frame(seed, 3), Pedido)
    before = list(Pedido.objects.order_by("id").values_list("id", "quantidade", "total"))
    df = pedidos_frame(seed, 4)
    if mode == "upsert":
        df["id"] = [before[0][0], before[1][0], 1000, 1001]

    def fail_after_half(rows_done):
        if rows_done >= 2:
            raise RuntimeError("injected failure")

    monkeypatch.setattr(load_models, "on_batch_written", fail_after_half)
    with transaction.atomic():  # the caller's transaction (a pipeline) goes on after the failure
        with pytest.raises(RuntimeError, match="injected failure"):
            write_model(df, Pedido, mode=mode, batch_size=2)
        assert list(Pedido.objects.order_by("id").values_list("id", "quantidade", "total")) == before


@pytest.mark.parametrize("mode", ["append", "replace", "upsert"])
def test_bulk_path_drops_and_restores_indexes(seed, monkeypatch, mode):
    from dw_analytics.load import _postgres, _sqlite

    monkeypatch.setattr(_sqlite, "REBUILD_MIN_ROWS", 1)
    monkeypatch.setattr(_postgres, "BULK_MIN_ROWS", 1)
    with connection.cursor() as cursor:
        before = connection.introspection.get_constraints(cursor, "sales_pedido")
    df = pedidos_frame(seed, 4)
    if mode == "upsert":
        df["id"] = [1, 2, 3, 4]
    result = write_model(df, Pedido, mode=mode)
    assert result.n_inserted == 4
    with connection.cursor() as cursor:
        after = connection.introspection.get_constraints(cursor, "sales_pedido")
    assert after == before


def test_failure_in_bulk_path_restores_indexes(seed, monkeypatch):
    from dw_analytics.load import _postgres, _sqlite

    monkeypatch.setattr(_sqlite, "REBUILD_MIN_ROWS", 1)
    monkeypatch.setattr(_postgres, "BULK_MIN_ROWS", 1)
    with connection.cursor() as cursor:
        before = connection.introspection.get_constraints(cursor, "sales_pedido")
    monkeypatch.setattr(load_models, "on_batch_written", lambda n: 1 / 0)
    with transaction.atomic(), pytest.raises(ZeroDivisionError):
        write_model(pedidos_frame(seed, 4), Pedido)
    with connection.cursor() as cursor:
        assert connection.introspection.get_constraints(cursor, "sales_pedido") == before


def test_stored_values_are_identical_to_the_orm(seed):
    """What write_model stores is byte-for-byte what Django's ORM stores."""
    when = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    when_us = dt.datetime(2024, 5, 6, 7, 8, 9, 120000, tzinfo=UTC)
    cli, prod = seed["clientes"][0], seed["produtos"][0]
    totals = ["0.10", "1.15", "12.00", "99999999999.99"]
    for i, total in enumerate(totals):
        Pedido.objects.create(
            id=100 + i,
            cliente_id=cli,
            produto_id=prod,
            quantidade=i,
            total=Decimal(total),
            custo=Decimal("0.29"),
            criado_em=when if i % 2 else when_us,
        )
    orm = _raw_rows(100)
    Pedido.objects.all().delete()
    df = pd.DataFrame(
        {
            "id": [100 + i for i in range(4)],
            "cliente_id": [cli] * 4,
            "produto_id": [prod] * 4,
            "quantidade": range(4),
            "total": money(*totals),
            "custo": money(*["0.29"] * 4),
            "criado_em": pd.Series([when if i % 2 else when_us for i in range(4)], dtype="datetime64[us, UTC]"),
            "atualizado_em": pd.Series([when if i % 2 else when_us for i in range(4)], dtype="datetime64[us, UTC]"),
        }
    )
    write_model(df, Pedido)
    assert _raw_rows(100) == orm


def _raw_rows(first_id):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, quantidade, total, custo, criado_em FROM sales_pedido WHERE id >= %s ORDER BY id",
            [first_id],
        )
        return cursor.fetchall()


def test_portable_path_gives_the_same_counts(seed, monkeypatch):
    from dw_analytics.load import _portable

    monkeypatch.setattr(load_models, "_writer_for", lambda connection, plan: _portable)
    result = write_model(pedidos_frame(seed, 3), Pedido)
    assert (result.n_inserted, result.details["path"]) == (3, "orm-bulk")
    ids = list(Pedido.objects.order_by("id").values_list("id", flat=True))
    upd = pedidos_frame(seed, 4).assign(id=[*ids, 999])
    upd.loc[0, "quantidade"] = 50
    result = write_model(upd, Pedido, mode="upsert")
    assert (result.n_inserted, result.n_updated) == (1, 1)
    assert Pedido.objects.get(id=999).total == Decimal("4.04")
    assert Pedido.objects.get(id=ids[0]).quantidade == 50
    result = write_model(pedidos_frame(seed, 2), Pedido, mode="replace")
    assert (result.n_inserted, result.n_deleted) == (2, 4)


def test_empty_frame_replaces_with_nothing_and_appends_nothing(seed):
    write_model(pedidos_frame(seed, 2), Pedido)
    empty = pedidos_frame(seed, 0)
    assert write_model(empty, Pedido).n_inserted == 0
    result = write_model(empty, Pedido, mode="replace")
    assert (result.n_inserted, result.n_deleted) == (0, 2)
    assert Pedido.objects.count() == 0


# -- a model with db_column names, defaults and auto fields (created for the test) --

_tokens = iter(range(1_000_000))


def next_token() -> str:
    return f"t{next(_tokens)}"


@pytest.fixture
def gadget_model(django_db_blocker):
    from django.db import models
    from django.test.utils import isolate_apps

    with isolate_apps("dw_analytics.sales"):

        class Gadget(models.Model):
            codigo = models.CharField(max_length=10, unique=True, db_column="Código ext")
            preco = models.DecimalField(max_digits=8, decimal_places=3, db_column="preço")
            ativo = models.BooleanField(default=True)
            token = models.CharField(max_length=20, default=next_token)
            peso = models.FloatField(null=True)
            dia = models.DateField(null=True)
            criado = models.DateTimeField(auto_now_add=True)
            mudado = models.DateTimeField(auto_now=True)

            class Meta:
                app_label = "sales"
                db_table = "dw_load_test_gadget"

    with django_db_blocker.unblock(), connection.schema_editor() as editor:
        editor.create_model(Gadget)
    yield Gadget
    with django_db_blocker.unblock(), connection.schema_editor() as editor:
        editor.delete_model(Gadget)


@pytest.mark.django_db(transaction=True)
def test_db_column_defaults_and_auto_now_follow_the_model(gadget_model):
    Gadget = gadget_model
    df = pd.DataFrame(
        {
            "codigo": ["a", "b"],
            "preço": pd.Series([Decimal("1.250"), Decimal("-0.001")], dtype=pd.ArrowDtype(pa.decimal128(8, 3))),
            "peso": [0.5, None],
            "dia": pd.Series([pd.Timestamp("2024-01-02"), pd.NaT]),
        }
    )
    before = timezone.now()
    assert write_model(df, Gadget).n_inserted == 2
    rows = list(
        Gadget.objects.order_by("codigo").values("codigo", "preco", "ativo", "token", "peso", "dia", "criado", "mudado")
    )
    assert [(r["codigo"], r["preco"], r["ativo"], r["peso"], r["dia"]) for r in rows] == [
        ("a", Decimal("1.250"), True, 0.5, dt.date(2024, 1, 2)),
        ("b", Decimal("-0.001"), True, None, None),
    ]
    assert rows[0]["token"] != rows[1]["token"]  # a callable default is called per row
    assert all(r["criado"] == r["mudado"] >= before for r in rows)
    created = rows[0]["criado"]
    result = write_model(
        df.assign(preco=[Decimal("2"), Decimal("-0.001")]).drop(columns=["preço"]),
        Gadget,
        mode="upsert",
        unique_fields=["codigo"],
    )
    assert (result.n_inserted, result.n_updated) == (0, 1)
    a, b = Gadget.objects.order_by("codigo")
    assert (a.preco, a.criado, b.mudado) == (Decimal("2.000"), created, rows[1]["mudado"])
    assert a.mudado > rows[0]["mudado"]


def destino_frame(**columns) -> pd.DataFrame:
    base = {
        "id_externo": ["a", "b"],
        "valor": money("1.00", "2.00"),
        "data": [dt.date(2024, 1, 1)] * 2,
    }
    return pd.DataFrame({**base, **columns})


@pytest.mark.parametrize(
    "df, message",
    [
        (
            destino_frame(id_externo=["a", "x" * 65]),
            "column 'id_externo': 1 value(s) longer than max_length=64; first offending rows: row 1: 'xxx",
        ),
        (
            destino_frame(id_externo=pd.Series([1, 2])),
            "column 'id_externo': 2 value(s) of the wrong type (expected strings, dtype int64)",
        ),
        (
            destino_frame(data=pd.to_datetime(["2024-01-01 00:00", "2024-01-01 10:30"])),
            "column 'data': 1 datetime value(s) with a time of day for a DateField; first offending rows: "
            "row 1: Timestamp('2024-01-01 10:30:00')",
        ),
        (
            destino_frame(data=["2024-01-01", "2024-01-02"]),
            "column 'data': 2 value(s) of the wrong type (expected dates, dtype str); first offending rows: row 0: '2024-01-01'",
        ),
        (
            destino_frame(valor=pd.Series([Decimal("1"), Decimal("Infinity")], dtype=object)),
            "column 'valor': 1 value(s) of the wrong type (expected finite Decimal values, dtype object); "
            "first offending rows: row 1: Decimal('Infinity')",
        ),
    ],
)
def test_bad_destino_input_names_column_and_rows(df, message):
    with pytest.raises(LoadValidationError) as info:
        write_model(df, Destino)
    assert message in str(info.value)
    assert Destino.objects.count() == 0


def test_naive_datetimes_that_do_not_exist_locally_are_rejected():
    # Brazil's DST began at midnight on 2018-11-04: 00:30 never happened in Sao Paulo.
    df = sales_frame().assign(atualizado_em=pd.to_datetime(["2018-11-04 00:30", "2018-11-05 00:30"]))
    with pytest.raises(
        LoadValidationError,
        match=r"1 naive datetime\(s\) that do not exist or are ambiguous in America/Sao_Paulo; first offending rows: row 0",
    ):
        write_model(df, SalesByCategory)


def test_mixed_aware_and_naive_datetimes_are_rejected():
    values = pd.Series([dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 1, 1)], dtype=object)
    with pytest.raises(LoadValidationError, match="mixes time-zone-aware and naive datetimes"):
        write_model(sales_frame().assign(atualizado_em=values), SalesByCategory)


def test_other_input_dtypes_load_exactly():
    df = pd.DataFrame(
        {
            "id_externo": pd.Series(["s1", "s2"], dtype="str"),
            "valor": pd.Series([Decimal("5.5"), 7], dtype=object),
            "data": pd.Series([dt.date(2024, 1, 1), dt.date(2024, 1, 2)], dtype=pd.ArrowDtype(pa.date32())),
        }
    )
    write_model(df, Destino)
    assert list(Destino.objects.order_by("pk").values_list("id_externo", "valor", "data")) == [
        ("s1", Decimal("5.50"), dt.date(2024, 1, 1)),
        ("s2", Decimal("7.00"), dt.date(2024, 1, 2)),
    ]


def test_invalid_options_are_configuration_errors():
    from dw_analytics.core.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="mode must be one of append, replace, upsert; got 'merge'"):
        write_model(destino_frame(), Destino, mode="merge")
    with pytest.raises(ConfigurationError, match="decimal_rounding must be one of reject, half_even"):
        write_model(destino_frame(), Destino, decimal_rounding="up")
    with pytest.raises(
        LoadValidationError,
        match=r"upsert key column\(s\) \['categoria_id'\] missing from the frame",
    ):
        write_model(
            sales_frame().drop(columns=["categoria_id"]),
            SalesByCategory,
            mode="upsert",
            unique_fields=["categoria_id"],
        )
