"""sync: from the real MariaDB and PostgreSQL servers (own tables) into the default database.

MariaDB at 127.0.0.1:3306 (root, empty password, database ``test``). When it cannot be
reached the tests skip, except under ``CI=true`` where they fail.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import uuid
from decimal import Decimal

import pandas as pd
import pytest
import sqlalchemy as sa
from django.core.management import call_command
from pandas.testing import assert_frame_equal

from dw_analytics.jobs.exceptions import SyncError
from dw_analytics.jobs.sync import sync_source
from dw_analytics.ops.models import SyncWatermark
from dw_analytics.sales.models import Destino
from dw_analytics.warehouse.models import PipelineRun, Watermark

MARIADB_URL = os.environ.get("DW_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
POSTGRES_URL = os.environ.get("DW_TEST_POSTGRES_SOURCE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _server(url: str, name: str) -> sa.Engine:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        message = f"{name} not reachable at {url}: {exc.__class__.__name__}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return engine


@pytest.fixture
def mariadb_table():
    engine = _server(MARIADB_URL, "MariaDB")
    name = f"dw_sync_{uuid.uuid4().hex[:10]}"
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                f"CREATE TABLE {name} (codigo VARCHAR(64) PRIMARY KEY, valor DECIMAL(14,2) NOT NULL, "
                "dia DATE NOT NULL, alterado_em DATETIME(6) NOT NULL, legado VARCHAR(10))"
            )
        )
    try:
        yield engine, name
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
        engine.dispose()


@pytest.fixture
def postgres_table():
    engine = _server(POSTGRES_URL, "PostgreSQL")
    name = f"dw_sync_{uuid.uuid4().hex[:10]}"
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                f"CREATE TABLE {name} (codigo TEXT PRIMARY KEY, valor NUMERIC(14,2) NOT NULL, dia DATE NOT NULL, versao BIGINT NOT NULL)"
            )
        )
    try:
        yield engine, name
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
        engine.dispose()


def _insert(engine: sa.Engine, table: str, rows: list[dict]) -> None:
    columns = list(rows[0])
    with engine.begin() as connection:
        connection.execute(
            sa.text(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"), rows
        )


def _destinos() -> pd.DataFrame:
    return pd.DataFrame(list(Destino.objects.order_by("id_externo").values("id_externo", "valor", "data")))


T = [dt.datetime(2026, 1, 1, 12, 0, 0, i * 1000) for i in range(6)]  # naive UTC, as Django stores them


@pytest.mark.django_db
def test_mariadb_table_syncs_exactly_then_incrementally(mariadb_table):
    engine, table = mariadb_table
    _insert(engine, table, [
        {"codigo": "A", "valor": Decimal("10.10"), "dia": dt.date(2026, 1, 1), "alterado_em": T[0], "legado": "x"},
        {"codigo": "B", "valor": Decimal("999999999999.99"), "dia": dt.date(2026, 1, 2), "alterado_em": T[1], "legado": None},
        {"codigo": "C", "valor": Decimal("0.01"), "dia": dt.date(2026, 1, 3), "alterado_em": T[2], "legado": None},
    ])  # fmt: skip
    options = {
        "to": "sales.Destino",
        "key": "id_externo",
        "table": table,
        "incremental_column": "alterado_em",
        "mapping": {"codigo": "id_externo", "dia": "data", "alterado_em": "", "legado": ""},
        "chunksize": 2,
    }

    first = sync_source(MARIADB_URL, **options)

    assert (first.n_read, first.n_inserted, first.n_updated) == (3, 3, 0)
    expected = pd.DataFrame(
        {
            "id_externo": ["A", "B", "C"],
            "valor": [Decimal("10.10"), Decimal("999999999999.99"), Decimal("0.01")],
            "data": [dt.date(2026, 1, 1), dt.date(2026, 1, 2), dt.date(2026, 1, 3)],
        }
    )
    assert_frame_equal(_destinos(), expected)
    mark = Watermark.objects.get()
    assert mark.last_updated_at == T[2].replace(tzinfo=dt.UTC)

    with engine.begin() as connection:
        connection.execute(
            sa.text(f"UPDATE {table} SET valor = 20.20, alterado_em = :t WHERE codigo = 'A'"), {"t": T[3]}
        )
    _insert(
        engine,
        table,
        [{"codigo": "D", "valor": Decimal("4.00"), "dia": dt.date(2026, 1, 4), "alterado_em": T[4], "legado": None}],
    )

    second = sync_source(MARIADB_URL, **options)

    # C (at the watermark) is read again but unchanged; A changed; D is new; B is not read
    assert (second.n_read, second.n_inserted, second.n_updated) == (3, 1, 1)
    expected = pd.concat(
        [expected, pd.DataFrame({"id_externo": ["D"], "valor": [Decimal("4.00")], "data": [dt.date(2026, 1, 4)]})],
        ignore_index=True,
    )
    expected.loc[0, "valor"] = Decimal("20.20")
    assert_frame_equal(_destinos(), expected)
    Watermark.objects.get(last_updated_at=T[4].replace(tzinfo=dt.UTC))
    run = PipelineRun.objects.get(pk=second.run_id)
    assert (run.pipeline, run.status, run.n_processed, run.n_inserted, run.n_updated) == ("sync", "succeeded", 3, 1, 1)
    assert "password" not in run.parameters["source"]


@pytest.mark.django_db
def test_postgres_query_syncs_incrementally_by_a_version_number(postgres_table):
    engine, table = postgres_table
    _insert(engine, table, [
        {"codigo": "P1", "valor": Decimal("1.50"), "dia": dt.date(2026, 2, 1), "versao": 1},
        {"codigo": "P2", "valor": Decimal("2.50"), "dia": dt.date(2026, 2, 2), "versao": 2},
    ])  # fmt: skip
    options = {
        "to": "sales.Destino",
        "key": ["id_externo"],
        "query": f"SELECT codigo AS id_externo, valor, dia AS data, versao FROM {table}",
        "incremental_column": "versao",
        "mapping": {"versao": ""},
    }

    first = sync_source(POSTGRES_URL, **options)
    assert (first.n_read, first.n_inserted) == (2, 2)
    assert (SyncWatermark.objects.get().kind, SyncWatermark.objects.get().value) == ("int", "2")

    with engine.begin() as connection:
        connection.execute(sa.text(f"UPDATE {table} SET valor = 1.75, versao = 3 WHERE codigo = 'P1'"))

    second = sync_source(POSTGRES_URL, **options)

    assert (second.n_read, second.n_inserted, second.n_updated) == (2, 0, 1)  # P2 (at the watermark) and P1
    expected = pd.DataFrame(
        {
            "id_externo": ["P1", "P2"],
            "valor": [Decimal("1.75"), Decimal("2.50")],
            "data": [dt.date(2026, 2, 1), dt.date(2026, 2, 2)],
        }
    )
    assert_frame_equal(_destinos(), expected)
    assert SyncWatermark.objects.get().value == "3"


@pytest.mark.django_db
def test_replace_mode_from_sqlite_through_the_command(tmp_path, capsys):
    source = tmp_path / "legacy.db"
    with sqlite3.connect(source) as connection:
        connection.execute("CREATE TABLE destinos (id_externo TEXT, valor NUMERIC(14, 2), data DATE)")
        connection.executemany(
            "INSERT INTO destinos VALUES (?, ?, ?)", [("S1", "3.30", "2026-03-01"), ("S2", "4.40", "2026-03-02")]
        )
    Destino.objects.create(id_externo="OLD", valor=Decimal("1.00"), data=dt.date(2020, 1, 1))

    call_command(
        "sync", "--source", f"sqlite:///{source}", "--table", "destinos", "--to", "sales.Destino", "--mode", "replace"
    )

    assert "synced 2 rows into sales.Destino: 2 inserted, 0 updated, 1 deleted" in capsys.readouterr().out
    assert _destinos()["id_externo"].tolist() == ["S1", "S2"]
    assert Destino.objects.get(pk="S1").valor == Decimal("3.30")


@pytest.mark.django_db
def test_source_columns_that_match_no_field_are_refused_and_nothing_is_written(tmp_path):
    source = tmp_path / "legacy.db"
    with sqlite3.connect(source) as connection:
        connection.execute("CREATE TABLE t (id_externo TEXT, valor NUMERIC(14, 2), data DATE, extra TEXT)")
        connection.execute("INSERT INTO t VALUES ('X', '1.00', '2026-01-01', 'e')")
    with pytest.raises(SyncError, match="'extra' match no field of sales.Destino"):
        sync_source(f"sqlite:///{source}", table="t", to="sales.Destino", key="id_externo")
    assert not Destino.objects.exists()


@pytest.mark.django_db
def test_sync_also_runs_from_run_pipeline_with_text_parameters(tmp_path):
    source = tmp_path / "legacy.db"
    with sqlite3.connect(source) as connection:
        connection.execute("CREATE TABLE t (codigo TEXT, valor NUMERIC(14, 2), data DATE)")
        connection.execute("INSERT INTO t VALUES ('R1', '7.70', '2026-04-01')")
    call_command(
        "run_pipeline", "sync", "--param", f"source=sqlite:///{source}", "--param", "table=t",
        "--param", "model=sales.Destino", "--param", "keys=id_externo", "--param", 'mapping={"codigo": "id_externo"}',
    )  # fmt: skip
    assert_frame_equal(
        _destinos(), pd.DataFrame({"id_externo": ["R1"], "valor": [Decimal("7.70")], "data": [dt.date(2026, 4, 1)]})
    )
