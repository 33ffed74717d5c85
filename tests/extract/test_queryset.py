"""read_queryset: QuerySets to typed DataFrames, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import tracemalloc
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from django.db import connection, transaction
from django.db.models import BooleanField, Case, Count, F, Max, Sum, Value, When
from django.db.models.functions import TruncMonth
from pandas.testing import assert_frame_equal

from dw_analytics.extract.exceptions import ExtractError
from dw_analytics.extract.queryset import read_queryset
from dw_analytics.sales.models import (
    UFS,
    Categoria,
    Cliente,
    Destino,
    FonteExterna,
    Pedido,
    Produto,
)

pytestmark = pytest.mark.django_db

UTC = dt.UTC
SP = "America/Sao_Paulo"
MONEY = pd.ArrowDtype(pa.decimal128(14, 2))
STR = pd.StringDtype(storage="pyarrow", na_value=np.nan)
TS = pd.DatetimeTZDtype(unit="us", tz=SP)
UF = pd.CategoricalDtype(pd.Index(UFS, dtype=STR))


def money(*values):
    return pd.array([None if v is None else Decimal(v) for v in values], dtype=MONEY)


def timestamps(*values):
    return pd.Series(pd.to_datetime(list(values), utc=True)).astype(TS).array


@pytest.fixture
def sales():
    """Two categories (one without products), two products, two customers, three orders."""
    bebidas = Categoria.objects.create(nome="Bebidas")
    Categoria.objects.create(nome="Vazia")
    cafe = Produto.objects.create(nome="Café", categoria=bebidas, preco=Decimal("19.90"), custo=Decimal("7.35"))
    cha = Produto.objects.create(nome="Chá", categoria=bebidas, preco=Decimal("0.10"), custo=Decimal("0.05"))
    ana = Cliente.objects.create(nome="Ana", email="ana@x.com", cidade="Recife", uf="PE")
    bia = Cliente.objects.create(nome="Bia", email="bia@x.com", cidade="Santos", uf="SP")
    created = [
        dt.datetime(2024, 1, 31, 23, 30, tzinfo=UTC),  # 20:30 in São Paulo
        dt.datetime(2024, 2, 1, 2, 15, 0, 123456, tzinfo=UTC),  # still 31 Jan in São Paulo
        dt.datetime(2024, 3, 5, 12, 0, tzinfo=UTC),
    ]
    orders = [
        Pedido.objects.create(
            cliente=ana,
            produto=cafe,
            quantidade=3,
            total=Decimal("59.70"),
            custo=Decimal("22.05"),
            criado_em=created[0],
        ),
        Pedido.objects.create(
            cliente=bia,
            produto=cha,
            quantidade=1,
            total=Decimal("0.10"),
            custo=Decimal("0.05"),
            criado_em=created[1],
        ),
        Pedido.objects.create(
            cliente=bia,
            produto=cafe,
            quantidade=2,
            total=Decimal("999999999999.99"),  # 14 significant digits, exact
            custo=Decimal("0.01"),
            criado_em=created[2],
        ),
    ]
    return {
        "categorias": [bebidas],
        "produtos": [cafe, cha],
        "clientes": [ana, bia],
        "pedidos": orders,
        "created": created,
    }


def test_whole_model_reads_every_concrete_field_typed_from_the_model(sales):
    orders = sales["pedidos"]
    df = read_queryset(Pedido.objects.order_by("id"))
    expected = pd.DataFrame(
        {
            "id": np.array([o.id for o in orders], dtype="int64"),
            "cliente_id": np.array([o.cliente_id for o in orders], dtype="int64"),
            "produto_id": np.array([o.produto_id for o in orders], dtype="int64"),
            "quantidade": np.array([3, 1, 2], dtype="int64"),
            "total": money("59.70", "0.10", "999999999999.99"),
            "custo": money("22.05", "0.05", "0.01"),
            "criado_em": timestamps(*sales["created"]),
            "atualizado_em": timestamps(*[o.atualizado_em for o in orders]),
        }
    )
    assert_frame_equal(df, expected)


def test_values_paths_across_relations_keep_their_names_and_types(sales):
    qs = Pedido.objects.order_by("id")
    df = read_queryset(qs, ["id", "produto__categoria__nome", "cliente__uf", "produto__preco"])
    expected = pd.DataFrame(
        {
            "id": np.array([o.id for o in sales["pedidos"]], dtype="int64"),
            "produto__categoria__nome": pd.array(["Bebidas"] * 3, dtype=STR),
            "cliente__uf": pd.Categorical(["PE", "SP", "SP"], dtype=UF),
            "produto__preco": money("19.90", "0.10", "19.90"),
        }
    )
    assert_frame_equal(df, expected)


def test_datetimes_are_tz_aware_in_the_project_time_zone(sales):
    df = read_queryset(Pedido.objects.order_by("id"), ["criado_em"])
    local = df["criado_em"].dt.tz_convert(ZoneInfo(SP))
    assert str(df["criado_em"].dtype) == "datetime64[us, America/Sao_Paulo]"
    assert list(local.dt.date) == [dt.date(2024, 1, 31), dt.date(2024, 1, 31), dt.date(2024, 3, 5)]
    assert df["criado_em"].iloc[1] == pd.Timestamp("2024-02-01 02:15:00.123456", tz="UTC")


def test_filters_annotations_and_ordering_are_kept(sales):
    qs = (
        Pedido.objects.filter(quantidade__gte=2)
        .annotate(lucro=F("total") - F("custo"), uf=F("cliente__uf"))
        .order_by("-quantidade")
    )
    df = read_queryset(qs, ["quantidade", "lucro", "uf"])
    expected = pd.DataFrame(
        {
            "quantidade": np.array([3, 2], dtype="int64"),
            # Arithmetic has no declared max_digits: precision 38, scale from the operands.
            "lucro": pd.array(
                [Decimal("37.65"), Decimal("999999999999.98")],
                dtype=pd.ArrowDtype(pa.decimal128(38, 2)),
            ),
            "uf": pd.Categorical(["PE", "SP"], dtype=UF),
        }
    )
    assert_frame_equal(df, expected)


def test_aggregates_are_exact_and_counts_are_int64(sales):
    qs = (
        Pedido.objects.values("produto__categoria__nome")
        .annotate(n=Count("id"), vendas=Sum("total"), mes=Max(TruncMonth("criado_em")))
        .order_by("produto__categoria__nome")
    )
    df = read_queryset(qs)
    assert df.columns.tolist() == ["produto__categoria__nome", "n", "vendas", "mes"]
    assert df["n"].dtype == np.dtype("int64")
    assert df["n"].tolist() == [3]
    # Sum gets room to grow past the field's 14 digits, and stays exact.
    assert df["vendas"].dtype == pd.ArrowDtype(pa.decimal128(38, 2))
    assert df["vendas"].tolist() == [Decimal("1000000000059.79")]


def test_trunc_month_annotation_uses_the_local_calendar(sales):
    qs = Pedido.objects.annotate(mes=TruncMonth("criado_em")).order_by("id")
    df = read_queryset(qs, ["mes"])
    assert df["mes"].dtype == TS
    # 2024-02-01 02:15 UTC is 31 Jan in São Paulo: January, as the ORM says.
    assert df["mes"].tolist() == [o.mes for o in qs]
    assert df["mes"].dt.month.tolist() == [1, 1, 3]


def test_reverse_relation_left_join_gives_nullable_int(sales):
    qs = Categoria.objects.annotate(n=Count("produtos")).order_by("nome", "produtos__id")
    df = read_queryset(qs, ["nome", "produtos__id"])
    cafe, cha = sales["produtos"]
    expected = pd.DataFrame(
        {
            "nome": pd.array(["Bebidas", "Bebidas", "Vazia"], dtype=STR),
            "produtos__id": pd.array([cafe.id, cha.id, None], dtype="Int64"),
        }
    )
    assert_frame_equal(df, expected)


def test_nullable_integer_and_boolean_annotations_keep_their_nulls(sales):
    qs = Categoria.objects.annotate(
        maior=Max("produtos__pedidos__quantidade"),
        cara=Case(
            When(produtos__preco__gt=1, then=Value(True)),
            When(produtos__preco__lte=1, then=Value(False)),
            default=None,
            output_field=BooleanField(null=True),
        ),
    ).order_by("nome", "cara")
    df = read_queryset(qs, ["nome", "maior", "cara"])
    expected = pd.DataFrame(
        {
            "nome": pd.array(["Bebidas", "Bebidas", "Vazia"], dtype=STR),
            "maior": pd.array([1, 3, None], dtype="Int64"),
            "cara": pd.array([False, True, None], dtype="boolean"),
        }
    )
    assert_frame_equal(df, expected)


def test_boolean_and_date_fields():
    FonteExterna.objects.create(id_externo="a", valor=Decimal("1.10"), data=dt.datetime(2024, 5, 1, tzinfo=UTC))
    FonteExterna.objects.create(
        id_externo="b",
        valor=Decimal("-2.00"),
        data=dt.datetime(2024, 5, 2, tzinfo=UTC),
        processado=True,
    )
    Destino.objects.create(id_externo="a", valor=Decimal("1.21"), data=dt.date(2024, 4, 30))
    fontes = read_queryset(FonteExterna.objects.order_by("id_externo"), ["id_externo", "processado"])
    assert_frame_equal(
        fontes,
        pd.DataFrame(
            {
                "id_externo": pd.array(["a", "b"], dtype=STR),
                "processado": np.array([False, True]),
            }
        ),
    )
    destinos = read_queryset(Destino.objects.all())
    assert_frame_equal(
        destinos,
        pd.DataFrame(
            {
                "id_externo": pd.array(["a"], dtype=STR),
                "valor": money("1.21"),
                "data": pd.array([dt.date(2024, 4, 30)], dtype=pd.ArrowDtype(pa.date32())),
            }
        ),
    )


def test_empty_queryset_keeps_columns_and_dtypes(sales):
    full = read_queryset(Pedido.objects.all(), ["id", "total", "criado_em", "cliente__uf"])
    for empty_qs in (Pedido.objects.filter(quantidade__gt=100), Pedido.objects.none()):
        empty = read_queryset(empty_qs, ["id", "total", "criado_em", "cliente__uf"])
        assert empty.empty
        assert empty.dtypes.to_dict() == full.dtypes.to_dict()
        chunks = list(read_queryset(empty_qs, ["id", "total"], chunksize=10))
        assert len(chunks) == 1
        assert chunks[0].empty
        assert chunks[0].dtypes.tolist() == [np.dtype("int64"), MONEY]


@pytest.mark.parametrize("chunksize", [1, 2, 1000])
def test_chunked_read_equals_whole_read(sales, chunksize):
    qs = Pedido.objects.order_by("id")
    fields = ["id", "produto__categoria__nome", "total", "criado_em", "cliente__uf"]
    whole = read_queryset(qs, fields)
    chunks = list(read_queryset(qs, fields, chunksize=chunksize))
    assert [len(c) for c in chunks][:-1] == [chunksize] * (len(chunks) - 1)
    assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)


def test_chunked_read_inside_an_atomic_block_sees_pending_writes(sales):
    with transaction.atomic():
        Pedido.objects.filter(quantidade=1).update(quantidade=7)
        chunks = read_queryset(Pedido.objects.order_by("id"), ["quantidade"], chunksize=2)
        assert pd.concat(list(chunks))["quantidade"].tolist() == [3, 7, 2]


def test_decimals_as_float_is_opt_in(sales):
    df = read_queryset(Pedido.objects.order_by("id"), ["total"], decimals_as_float=True)
    assert df["total"].dtype == np.dtype("float64")
    assert df["total"].tolist() == [59.70, 0.10, 999999999999.99]


def test_values_queryset_is_read_with_its_own_columns(sales):
    qs = Pedido.objects.order_by("id").values("id", uf=F("cliente__uf"))
    df = read_queryset(qs)
    assert df.columns.tolist() == ["id", "uf"]
    assert df["uf"].tolist() == ["PE", "SP", "SP"]


def test_totals_match_the_database_sum_exactly(sales):
    df = read_queryset(Pedido.objects.all(), ["total", "custo"])
    db = Pedido.objects.aggregate(total=Sum("total"), custo=Sum("custo"))
    assert df["total"].sum() == db["total"]
    assert df["custo"].sum() == db["custo"]


def test_unknown_field_is_a_clear_error(sales):
    with pytest.raises(ExtractError, match="nao_existe"):
        read_queryset(Pedido.objects.all(), ["id", "nao_existe"])


def test_rejects_a_non_positive_chunksize():
    with pytest.raises(ExtractError, match="chunksize"):
        read_queryset(Pedido.objects.all(), chunksize=0)


def test_sqlite_real_money_converts_to_exact_cents(sales):
    if connection.vendor != "sqlite":
        pytest.skip("only SQLite stores decimals as REAL")
    with connection.cursor() as cursor:
        cursor.execute("SELECT typeof(total), total FROM sales_pedido ORDER BY id")
        stored = cursor.fetchall()
    # What the driver hands back: floats (and an int for a whole value), not Decimals.
    assert stored == [("real", 59.7), ("real", 0.1), ("real", 999999999999.99)]
    df = read_queryset(Pedido.objects.order_by("id"), ["total"])
    assert df["total"].tolist() == [Decimal("59.70"), Decimal("0.10"), Decimal("999999999999.99")]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.1, 12, None, -0.29], ["0.10", "12.00", None, "-0.29"]),
        (["0.35", 1.25, None], ["0.35", "1.25", None]),  # text (SQLite expressions) parsed exactly
        ([Decimal("1.5"), None], ["1.50", None]),
        # 15 significant digits: the most a SQLite REAL keeps, still exact.
        ([9999999999999.99, -9999999999999.99], ["9999999999999.99", "-9999999999999.99"]),
    ],
)
def test_decimal_array_is_exact_for_driver_values(values, expected):
    from dw_analytics.extract._types import decimal_array

    result = decimal_array(values, pa.decimal128(16, 2)).to_pylist()
    assert result == [None if e is None else Decimal(e) for e in expected]


def _bulk_orders(n_rows, produto, cliente):
    when = dt.datetime(2024, 1, 1, tzinfo=UTC)
    Pedido.objects.bulk_create(
        (
            Pedido(
                cliente=cliente,
                produto=produto,
                quantidade=1 + i % 7,
                total=Decimal(i % 100_000) / 100,
                custo=Decimal("0.01"),
                criado_em=when,
            )
            for i in range(n_rows)
        ),
        batch_size=2_000,
    )


def _peak_python_bytes_of_chunked_read(chunksize):
    tracemalloc.start()
    n = 0
    try:
        for chunk in read_queryset(Pedido.objects.order_by("id"), chunksize=chunksize):
            n += len(chunk)
        return n, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_chunked_read_memory_is_bounded_by_the_chunk_not_the_table(sales):
    cafe, _cha = sales["produtos"]
    ana, _bia = sales["clientes"]
    _bulk_orders(3_000, cafe, ana)
    small_n, small_peak = _peak_python_bytes_of_chunked_read(500)
    _bulk_orders(12_000, cafe, ana)  # the table grows 5x
    big_n, big_peak = _peak_python_bytes_of_chunked_read(500)
    whole_peak = _peak_python_bytes_of_whole_read()
    assert (small_n, big_n) == (3_003, 15_003)
    # Flat in the table size (same chunk), and far below a whole read of the table.
    assert big_peak < 1.5 * small_peak + 256 * 1024, (small_peak, big_peak)
    if connection.vendor == "sqlite":
        # On PostgreSQL a whole read goes through Arrow (COPY), whose buffers tracemalloc does not see.
        assert big_peak < whole_peak / 3, (big_peak, whole_peak)


def _peak_python_bytes_of_whole_read():
    tracemalloc.start()
    try:
        read_queryset(Pedido.objects.order_by("id"))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.django_db(transaction=True)
def test_chunked_read_outside_a_transaction_streams_and_leaves_autocommit_on(monkeypatch):
    from dw_analytics.extract import _fetch

    adbc_reads = []
    original = _fetch._adbc_postgres_frame
    monkeypatch.setattr(_fetch, "_adbc_postgres_frame", lambda *a: adbc_reads.append(original(*a)) or adbc_reads[-1])
    monkeypatch.setattr(_fetch, "ADBC_MIN_ROWS", 0)  # this small result too
    bebidas = Categoria.objects.create(nome="Bebidas")
    cafe = Produto.objects.create(nome="Café", categoria=bebidas, preco=Decimal("1.00"), custo=Decimal("0.50"))
    ana = Cliente.objects.create(nome="Ana", email="ana@x.com", cidade="Recife", uf="PE")
    _bulk_orders(25, cafe, ana)
    chunks = read_queryset(Pedido.objects.order_by("id"), ["id", "total"], chunksize=10)
    first = next(chunks)
    assert len(first) == 10
    chunks.close()  # abandoning the iterator closes its cursor and transaction
    assert connection.get_autocommit()
    assert not connection.in_atomic_block
    sizes = [len(c) for c in read_queryset(Pedido.objects.all(), ["id"], chunksize=10)]
    assert sizes == [10, 10, 5]
    fields = ["id", "total", "criado_em", "cliente__uf", "produto__categoria__nome"]
    # Outside a transaction a second connection (ADBC) may read; inside one, never.
    outside = read_queryset(Pedido.objects.order_by("id"), fields)
    assert len(adbc_reads) == (1 if connection.vendor == "postgresql" else 0)
    assert all(frame is not None for frame in adbc_reads)  # ADBC read it, no fallback
    with transaction.atomic():
        inside = read_queryset(Pedido.objects.order_by("id"), fields)
    assert len(adbc_reads) <= 1
    assert_frame_equal(outside, inside)
    assert outside["total"].sum() == Pedido.objects.aggregate(s=Sum("total"))["s"]
    monkeypatch.setattr(_fetch, "ADBC_MIN_ROWS", 500_000)
    assert_frame_equal(read_queryset(Pedido.objects.order_by("id"), fields), outside)
    assert len(adbc_reads) == (1 if connection.vendor == "postgresql" else 0)  # 25 rows: COPY, no new connection


def test_distinct_with_ordering_by_an_unselected_field_returns_only_the_selected_columns(sales):
    # Django adds the ordering column to the SELECT of a DISTINCT query.
    qs = Pedido.objects.values("cliente__uf").order_by("quantidade").distinct()
    df = read_queryset(qs)
    assert df.columns.tolist() == ["cliente__uf"]
    assert df["cliente__uf"].tolist() == [row["cliente__uf"] for row in qs] == ["SP", "SP", "PE"]
    chunks = read_queryset(qs, chunksize=2)
    assert_frame_equal(pd.concat(list(chunks), ignore_index=True), df)


def test_aware_datetimes_keep_their_instant_whatever_their_zone():
    from dw_analytics.extract._types import DATETIME, ColumnSpec

    spec = ColumnSpec("quando", DATETIME, tz=SP)
    values = [
        dt.datetime(2024, 1, 1, 0, 0, tzinfo=ZoneInfo(SP)),
        None,
        dt.datetime(2024, 1, 1, 3, 0, tzinfo=UTC),
        "2024-01-01 03:00:00",  # SQLite text: naive UTC
    ]
    result = spec.convert(values)
    instant = pd.Timestamp("2024-01-01 03:00", tz="UTC")
    assert result.dtype == TS
    assert result.isna().tolist() == [False, True, False, False]
    assert result.dropna().tolist() == [instant, instant, instant]


def test_postgresql_plans_a_chunked_read_for_every_row_and_restores_the_setting(sales):
    if connection.vendor != "postgresql":
        pytest.skip("cursor_tuple_fraction is PostgreSQL's")

    def tuple_fraction() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW cursor_tuple_fraction")
            return cursor.fetchone()[0]

    seen = []
    with transaction.atomic():
        for chunk in read_queryset(Pedido.objects.order_by("id"), ["id"], chunksize=2):
            seen.append((len(chunk), tuple_fraction()))
        after = tuple_fraction()
    # The cursor was declared with the setting at 1 (the plan is fixed then); every chunk
    # is read, and the caller's session is left as it was.
    assert [n for n, _ in seen] == [2] * (Pedido.objects.count() // 2) + [1] * (Pedido.objects.count() % 2)
    assert {fraction for _, fraction in seen} == {"0.1"} and after == "0.1"
