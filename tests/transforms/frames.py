"""Small literal inputs shaped like the extract of the sales app, and random ones for hypothesis."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import strategies as st

TZ = "America/Sao_Paulo"
MONEY = pd.ArrowDtype(pa.decimal128(14, 2))
PROFIT = pd.ArrowDtype(pa.decimal128(15, 2))
SUM = pd.ArrowDtype(pa.decimal128(38, 2))
AVERAGE = pd.ArrowDtype(pa.decimal128(38, 4))
RATIO = pd.ArrowDtype(pa.decimal128(38, 6))
DATE = pd.ArrowDtype(pa.date32())


def money(*values: str | None, dtype: pd.ArrowDtype = MONEY) -> pd.arrays.ArrowExtensionArray:
    return pd.array([None if v is None else Decimal(v) for v in values], dtype=dtype)


def stamps(*values: str) -> pd.DatetimeIndex:
    """Local America/Sao_Paulo wall times."""
    return pd.DatetimeIndex(pd.to_datetime(list(values))).tz_localize(TZ).as_unit("us")


def dates(*values: str) -> pd.arrays.ArrowExtensionArray:
    return pd.array(pd.to_datetime(list(values)).date, dtype=DATE)


def categories() -> pd.DataFrame:
    return pd.DataFrame({"id": [1, 2], "nome": ["Livros", "Jogos"]})


def products() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [10, 11, 12],
            "nome": ["Atlas", "Xadrez", "Gibi"],
            "categoria_id": [1, 2, 1],
            "preco": money("10.00", "50.00", "5.00"),
            "custo": money("6.00", "30.00", "2.50"),
            "atualizado_em": stamps("2024-01-01", "2024-01-01", "2024-01-01"),
        }
    )


def customers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [100, 101],
            "nome": ["Ana", "Bia"],
            "email": ["ana@example.com", "bia@example.com"],
            "cidade": ["Recife", "Natal"],
            "uf": ["PE", "RN"],
        }
    )


def orders() -> pd.DataFrame:
    """Five orders: order 4 has an unknown customer (999), order 5 an unknown product (77).

    Order 2 is placed at 23:30 local on 31 March, already 1 April in UTC.
    """
    frame = pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5],
            "cliente_id": [100, 101, 100, 999, 101],
            "produto_id": [10, 11, 10, 12, 77],
            "quantidade": [1, 2, 3, 1, 1],
            "total": money("10.00", "100.00", "30.00", "5.00", "7.00"),
            "custo": money("6.00", "60.00", "18.00", "2.50", "1.00"),
            "criado_em": stamps(
                "2024-03-01 10:00",
                "2024-03-31 23:30",
                "2024-04-01 00:10",
                "2024-12-31 22:00",
                "2025-01-01 01:00",
            ),
        }
    )
    frame["atualizado_em"] = frame["criado_em"]
    return frame


@st.composite
def random_orders(draw: st.DrawFn, max_size: int = 40) -> pd.DataFrame:
    """Orders over 2023-2025 for the literal products (plus unknown 77) and customers (plus 999)."""
    n = draw(st.integers(0, max_size))
    cents = st.integers(0, 10**7)
    seconds = st.integers(0, 3 * 365 * 86_400)
    ids = draw(st.lists(st.integers(1, 10**6), min_size=n, max_size=n, unique=True))
    totals = draw(st.lists(cents, min_size=n, max_size=n))
    costs = draw(st.lists(cents, min_size=n, max_size=n))
    offsets = draw(st.lists(seconds, min_size=n, max_size=n))
    start = pd.Timestamp("2023-01-01", tz=TZ).as_unit("us")
    return pd.DataFrame(
        {
            "id": np.array(ids, dtype=np.int64),
            "cliente_id": np.array(draw(st.lists(st.sampled_from([100, 101, 999]), min_size=n, max_size=n)), np.int64),
            "produto_id": np.array(draw(st.lists(st.sampled_from([10, 11, 12, 77]), min_size=n, max_size=n)), np.int64),
            "quantidade": np.array(draw(st.lists(st.integers(1, 9), min_size=n, max_size=n)), np.int64),
            "total": pd.array([Decimal(c).scaleb(-2) for c in totals], dtype=MONEY),
            "custo": pd.array([Decimal(c).scaleb(-2) for c in costs], dtype=MONEY),
            "criado_em": pd.DatetimeIndex(
                [start + pd.Timedelta(seconds=s) for s in offsets], dtype=f"datetime64[us, {TZ}]"
            ),
        }
    )


@st.composite
def chunkings(
    draw: st.DrawFn, frame_strategy: st.SearchStrategy[pd.DataFrame]
) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """A frame and the same rows cut into random consecutive chunks (empty chunks included)."""
    frame = draw(frame_strategy)
    cuts = sorted(draw(st.lists(st.integers(0, len(frame)), max_size=5)))
    bounds = [0, *cuts, len(frame)]
    return frame, [frame.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
