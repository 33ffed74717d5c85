"""Fixtures of the engine tests: one small LocalCluster for the whole session, and order data."""

from __future__ import annotations

from decimal import Decimal

import dask
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

MONEY = pd.ArrowDtype(pa.decimal128(14, 2))
N_ORDERS = 3_000
N_PRODUCTS = 40
N_CATEGORIES = 5
N_CUSTOMERS = 60


@pytest.fixture(scope="session")
def dask_cluster():
    """Two worker processes, one thread each; a task may kill its worker only once before it fails."""
    from distributed import LocalCluster

    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1}),
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            memory_limit="1GiB",
        ) as cluster,
    ):
        yield cluster


@pytest.fixture(scope="session")
def dask_client(dask_cluster):
    from distributed import Client

    with Client(dask_cluster) as client:
        yield client


@pytest.fixture
def dask_engine(dask_client):
    from dw_analytics.engines.dask import DaskEngine

    return DaskEngine(dask_client)


def make_orders(n: int = N_ORDERS, seed: int = 7) -> pd.DataFrame:
    """Orders with exact money, a few unknown products / customers, spread over 2024-2025."""
    rng = np.random.default_rng(seed)
    cents = rng.integers(1, 500_000, n)
    cost = (cents * rng.integers(30, 95, n)) // 100
    produto = rng.integers(1, N_PRODUCTS + 3, n)  # ids above N_PRODUCTS are unknown
    created = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 730 * 86_400, n), unit="s")
    return pd.DataFrame(
        {
            "id": np.arange(1, n + 1, dtype=np.int64),
            "cliente_id": rng.integers(1, N_CUSTOMERS + 2, n),
            "produto_id": produto,
            "quantidade": rng.integers(1, 9, n),
            "total": pd.array([Decimal(int(c)).scaleb(-2) for c in cents], dtype=MONEY),
            "custo": pd.array([Decimal(int(c)).scaleb(-2) for c in cost], dtype=MONEY),
            "criado_em": created.as_unit("us"),
        }
    )


def make_reference() -> dict[str, pd.DataFrame]:
    categories = pd.DataFrame({"id": np.arange(1, N_CATEGORIES + 1), "nome": [f"Cat {i}" for i in range(1, 6)]})
    ids = np.arange(1, N_PRODUCTS + 1)
    products = pd.DataFrame(
        {
            "id": ids,
            "nome": [f"Produto {i}" for i in ids],
            "categoria_id": (ids % N_CATEGORIES) + 1,
            "preco": pd.array([Decimal(int(i * 150)).scaleb(-2) for i in ids], dtype=MONEY),
            "custo": pd.array([Decimal(int(i * 90)).scaleb(-2) for i in ids], dtype=MONEY),
        }
    )
    cids = np.arange(1, N_CUSTOMERS + 1)
    customers = pd.DataFrame(
        {
            "id": cids,
            "nome": [f"Cliente {i}" for i in cids],
            "email": [f"c{i}@example.com" for i in cids],
            "cidade": ["Recife"] * len(cids),
            "uf": ["PE"] * len(cids),
        }
    )
    return {"categories": categories, "products": products, "customers": customers}


def with_category(orders: pd.DataFrame, reference: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Orders joined to their product's category (id and name), as an extract would deliver them."""
    products = reference["products"].set_index("id")["categoria_id"]
    names = reference["categories"].set_index("id")["nome"]
    categoria_id = orders["produto_id"].map(products).fillna(-1).astype(np.int64)
    return orders.assign(
        categoria_id=categoria_id,
        categoria=categoria_id.map(names).fillna("Unknown").astype("str"),
    )


def write_csv_files(orders: pd.DataFrame, folder, n_files: int = 3) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, part in enumerate(_split(orders, n_files)):
        path = folder / f"orders-{index}.csv"
        part.assign(criado_em=part["criado_em"].dt.strftime("%Y-%m-%dT%H:%M:%S")).to_csv(path, index=False)
        paths.append(path)
    return paths


def write_hive_parquet(orders: pd.DataFrame, folder) -> None:
    """A hive dataset partitioned by ``ano`` (year), two files per year."""
    import pyarrow.parquet as pq

    years = orders["criado_em"].dt.year
    for year in sorted(years.unique()):
        rows = orders[years == year]
        target = folder / f"ano={year}"
        target.mkdir(parents=True)
        for index, part in enumerate(_split(rows, 2)):
            table = pa.Table.from_pandas(part, preserve_index=False)
            pq.write_table(table, target / f"part-{index}.parquet")


def _split(frame: pd.DataFrame, n: int) -> list[pd.DataFrame]:
    bounds = np.linspace(0, len(frame), n + 1).astype(int)
    return [frame.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
