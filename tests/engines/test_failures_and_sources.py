"""A worker killed mid-publish never exposes a partial snapshot; PostgreSQL key-range reads; the switch."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import sqlalchemy as sa
from pandas.testing import assert_frame_equal

from dw_analytics.core.exceptions import ConfigurationError
from dw_analytics.engines import (
    EngineError,
    EngineSession,
    PandasEngine,
    csv_partitions,
    map_partitions,
    open_engine,
    sql_partitions,
)
from dw_analytics.engines.dask import dask_client
from dw_analytics.load.parquet import open_snapshot, read_snapshot
from tests.engines.conftest import make_orders, make_reference, with_category, write_csv_files

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="module")
def orders():
    return with_category(make_orders(1_200, seed=11), make_reference())


@pytest.fixture(scope="module")
def parts(orders, tmp_path_factory):
    folder = tmp_path_factory.mktemp("csv_kill")
    write_csv_files(orders, folder, n_files=4)
    return csv_partitions(folder, decimals={"total": 2, "custo": 2}, dates=["criado_em"])


def kill_worker_once(chunks, marker: str):
    """Kill this worker process on the first attempt only (the marker file remembers it)."""
    for chunk in chunks:
        if not os.path.exists(marker):
            Path(marker).write_text("killed")
            os.kill(os.getpid(), signal.SIGKILL)
        yield chunk


def kill_worker_always(chunks):
    for _chunk in chunks:
        os.kill(os.getpid(), signal.SIGKILL)
        yield _chunk


def test_a_worker_killed_mid_publish_is_retried_and_the_snapshot_is_complete(
    dask_engine, parts, orders, tmp_path, output_dir
):
    first = dask_engine.publish_snapshot({"orders": parts}, "sales")
    marker = str(tmp_path / "killed-once")
    flaky = parts[:2] + map_partitions(parts[2:3], kill_worker_once, marker) + parts[3:]

    second = dask_engine.publish_snapshot({"orders": flaky}, "sales")

    assert Path(marker).exists()  # the worker really died once
    snapshot = open_snapshot("sales")
    assert snapshot.version == second.version != first.version
    back = snapshot.read("orders").sort_values("id", ignore_index=True)
    assert back["id"].tolist() == orders["id"].tolist()
    assert back["total"].tolist() == orders["total"].tolist()
    assert not list((output_dir / "sales").rglob(".*"))


def test_a_task_that_keeps_killing_workers_fails_and_the_previous_snapshot_stays(dask_engine, parts, output_dir):
    first = dask_engine.publish_snapshot({"orders": parts}, "sales")
    doomed = parts[:1] + map_partitions(parts[1:2], kill_worker_always) + parts[2:]

    with pytest.raises(EngineError, match="killed its worker") as failure:
        dask_engine.publish_snapshot({"orders": doomed}, "sales")

    assert failure.value.retryable
    root = output_dir / "sales"
    assert (root / "CURRENT").read_text().strip() == first.version
    manifest = json.loads((root / first.version / "_manifest.json").read_text())
    assert manifest["tables"]["orders"]["n_rows"] == 1_200
    assert sorted(p.name for p in root.iterdir()) == sorted(["CURRENT", "current", first.version])
    assert len(read_snapshot("sales", "orders")) == 1_200


@pytest.fixture
def postgres_orders(orders):
    """The orders in a PostgreSQL table of database ``test`` (any suite run); dropped afterwards.

    Not depending on DATABASE_URL, and failing -- not skipping -- when the server is down.
    """
    engine = sa.create_engine(POSTGRES_URL)
    table = f"engine_orders_{os.getpid()}"
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
            connection.execute(
                sa.text(
                    f"CREATE TABLE {table} (id bigint PRIMARY KEY, categoria_id bigint NOT NULL, "
                    "categoria text NOT NULL, produto_id bigint NOT NULL, quantidade integer NOT NULL, "
                    "total numeric(14, 2) NOT NULL, custo numeric(14, 2) NOT NULL)"
                )
            )
            rows = orders[["id", "categoria_id", "categoria", "produto_id", "quantidade", "total", "custo"]].astype(
                object
            )
            connection.execute(
                sa.text(
                    f"INSERT INTO {table} VALUES (:id, :categoria_id, :categoria, :produto_id, "
                    ":quantidade, :total, :custo)"
                ),
                [
                    dict(zip(rows.columns, (int(v) if isinstance(v, int) else v for v in row), strict=True))
                    for row in rows.itertuples(index=False)
                ],
            )
        yield table
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()


def test_postgresql_key_ranges_on_dask_equal_pandas_and_the_database_sql(dask_engine, postgres_orders):
    parts = sql_partitions(POSTGRES_URL, postgres_orders, n_partitions=3, chunksize=250)
    assert [(p.lo, p.hi) for p in parts] == [(1, 401), (401, 801), (801, 1201)]

    expected = PandasEngine().sales_by_category(parts)
    result = dask_engine.sales_by_category(parts)

    assert_frame_equal(result, expected)
    with sa.create_engine(POSTGRES_URL).connect() as connection:
        by_sql = connection.execute(
            sa.text(
                f"SELECT categoria_id, count(*), sum(total), sum(total - custo), "
                f"round(sum(total) / count(*), 4) FROM {postgres_orders} "
                "GROUP BY categoria_id ORDER BY categoria_id"
            )
        ).all()
    assert [tuple(r) for r in by_sql] == list(
        zip(
            result["categoria_id"],
            result["total_vendas"],
            result["receita"],
            result["lucro"],
            result["valor_medio"],
            strict=True,
        )
    )


def test_the_default_engine_is_pandas_and_unknown_engines_are_refused(settings):
    settings.DW_ENGINE = "pandas"
    with open_engine() as engine:
        assert engine.name == "pandas"
    settings.DW_ENGINE = "spark"
    with pytest.raises(ConfigurationError, match="unknown engine 'spark'"), open_engine():
        pass
    with pytest.raises(ConfigurationError):
        EngineSession("ray")


def test_an_engine_session_connects_to_the_configured_scheduler_only_when_used(settings, dask_cluster, parts, orders):
    settings.DW_ENGINE = "dask"
    settings.DW_DASK_SCHEDULER = dask_cluster.scheduler_address
    with EngineSession() as session:
        assert session._engine is None
        result = session.engine.rollup(parts, by="categoria_id", n=("id", "size"))
        assert session.engine.client.scheduler.address == dask_cluster.scheduler_address
    assert result["n"].sum() == len(orders)


def test_an_unreachable_scheduler_is_a_retryable_engine_error():
    with (
        pytest.raises(EngineError, match="cannot reach the Dask scheduler") as failure,
        dask_client("tcp://127.0.0.1:1", timeout="1s"),
    ):
        pass
    assert failure.value.retryable
