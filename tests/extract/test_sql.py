"""read_sql: SQLAlchemy queries to typed DataFrames (SQLite file in tmp_path, or PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa
from django.conf import settings
from django.db import connections
from pandas.testing import assert_frame_equal

from dw_analytics.extract.exceptions import ExtractError
from dw_analytics.extract.sql import read_sql

UTC = dt.UTC
MONEY = pd.ArrowDtype(pa.decimal128(14, 2))
STR = pd.StringDtype(storage="pyarrow", na_value=np.nan)
TS = pd.DatetimeTZDtype(unit="us", tz="America/Sao_Paulo")
ROWS = [
    {
        "id": 1,
        "total": Decimal("59.70"),
        "criado_em": dt.datetime(2024, 1, 31, 23, 30, tzinfo=UTC),
        "quantidade": 3,
        "ativo": True,
        "nome": "Café",
        "dia": dt.date(2024, 1, 31),
    },
    {
        "id": 2,
        "total": Decimal("0.10"),
        "criado_em": dt.datetime(2024, 2, 1, 2, 15, 0, 123456, tzinfo=UTC),
        "quantidade": None,
        "ativo": None,
        "nome": "Chá",
        "dia": None,
    },
    {
        "id": 3,
        "total": Decimal("999999999999.99"),
        "criado_em": dt.datetime(2024, 3, 5, 12, 0, tzinfo=UTC),
        "quantidade": 2,
        "ativo": False,
        "nome": None,
        "dia": dt.date(2024, 3, 5),
    },
]


@pytest.fixture
def source(tmp_path, django_db_setup):
    """A committed table in a file SQLite DB (tmp_path), or in the PostgreSQL test database."""
    db = connections["default"].settings_dict
    if "postgresql" in db["ENGINE"]:
        url = sa.URL.create(
            "postgresql+psycopg",
            username=db.get("USER") or None,
            password=db.get("PASSWORD") or None,
            host=db.get("HOST") or None,
            port=int(db["PORT"]) if db.get("PORT") else None,
            database=db["NAME"],
        ).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{tmp_path / 'source.sqlite3'}"
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    table = sa.Table(
        f"dw_read_sql_{uuid.uuid4().hex[:10]}",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("total", sa.Numeric(14, 2), nullable=False),
        sa.Column("criado_em", sa.DateTime(timezone=True), nullable=False),
        sa.Column("quantidade", sa.Integer),
        sa.Column("ativo", sa.Boolean),
        sa.Column("nome", sa.String(50)),
        sa.Column("dia", sa.Date),
    )
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(table.insert(), ROWS)
    yield url, engine, table
    metadata.drop_all(engine)
    engine.dispose()


def expected_frame(rows=ROWS):
    return pd.DataFrame(
        {
            "id": pd.array([r["id"] for r in rows], dtype="int64"),
            "total": pd.array([r["total"] for r in rows], dtype=MONEY),
            "criado_em": pd.Series(pd.to_datetime([r["criado_em"] for r in rows], utc=True)).astype(TS),
            "quantidade": pd.array([r["quantidade"] for r in rows], dtype="Int64"),
            "ativo": pd.array([r["ativo"] for r in rows], dtype="boolean"),
            "nome": pd.array([r["nome"] for r in rows], dtype=STR),
            "dia": pd.array([r["dia"] for r in rows], dtype=pd.ArrowDtype(pa.date32())),
        }
    )


def test_select_reads_exact_typed_columns(source):
    url, _engine, table = source
    df = read_sql(url, sa.select(table).order_by(table.c.id))
    assert_frame_equal(df, expected_frame())


def test_engine_and_url_give_the_same_frame(source):
    url, engine, table = source
    query = sa.select(table).order_by(table.c.id)
    assert_frame_equal(read_sql(engine, query), read_sql(url, query))


def test_text_query_with_params_and_declared_columns_is_exact(source):
    url, _engine, table = source
    query = sa.text(f"SELECT id, total FROM {table.name} WHERE total > :minimum ORDER BY id").columns(
        sa.column("id", sa.Integer), sa.column("total", sa.Numeric(14, 2))
    )
    df = read_sql(url, query, params={"minimum": 1})
    assert df["total"].dtype == MONEY
    assert df["total"].tolist() == [Decimal("59.70"), Decimal("999999999999.99")]
    assert df["id"].tolist() == [1, 3]


def test_plain_text_query_uses_the_types_the_database_reports(source):
    url, _engine, table = source
    df = read_sql(url, f"SELECT id, total, quantidade FROM {table.name} ORDER BY id")
    assert df["quantidade"].dtype == pd.Int64Dtype()
    assert df["quantidade"].tolist()[0] == 3 and df["quantidade"].isna().tolist()[1]
    if "postgresql" in settings.DATABASES["default"]["ENGINE"]:
        # PostgreSQL reports numeric(14, 2): exact decimals.
        assert df["total"].dtype == MONEY
        assert df["total"].sum() == Decimal("1000000000059.79")
    else:
        # SQLite reports no types for a text query: REAL values stay float64.
        assert df["total"].dtype == np.dtype("float64")


def test_total_matches_the_database_sum(source):
    url, engine, table = source
    df = read_sql(url, sa.select(table.c.total))
    with engine.connect() as connection:
        db_total = connection.execute(sa.select(sa.func.sum(table.c.total).cast(sa.Numeric(16, 2)))).scalar_one()
    assert df["total"].sum() == Decimal(db_total).quantize(Decimal("0.01"))
    assert df["total"].sum() == Decimal("1000000000059.79")


@pytest.mark.parametrize("chunksize", [1, 2, 10])
def test_chunked_read_equals_whole_read(source, chunksize):
    url, _engine, table = source
    query = sa.select(table).order_by(table.c.id)
    chunks = list(read_sql(url, query, chunksize=chunksize))
    assert [len(c) for c in chunks] == [min(chunksize, 3 - i) for i in range(0, 3, chunksize)]
    assert_frame_equal(pd.concat(chunks, ignore_index=True), expected_frame())


def test_empty_result_keeps_columns_and_dtypes(source):
    url, _engine, table = source
    query = sa.select(table).where(table.c.id < 0)
    empty = read_sql(url, query)
    assert empty.empty
    assert empty.dtypes.to_dict() == expected_frame().dtypes.to_dict()
    chunks = list(read_sql(url, query, chunksize=5))
    assert len(chunks) == 1 and chunks[0].empty
    assert chunks[0].dtypes.to_dict() == expected_frame().dtypes.to_dict()


def test_failing_query_names_the_database_and_the_query(source):
    url, _engine, _table = source
    with pytest.raises(ExtractError, match="no_such_table"):
        read_sql(url, "SELECT * FROM no_such_table")


def test_bad_url_is_a_clear_error():
    with pytest.raises(ExtractError, match="database URL"):
        read_sql("not a url", "SELECT 1")
