"""Deterministic, realistic demo data for the sales app, generated with numpy.

The frames have the skew of a real shop: a few categories and products sell
far more than the rest (Zipf-like popularity), a few customers buy often,
November (Black Friday) and December sell most, weekends less, and sales grow
year over year. The same ``seed`` and ``end`` give the same data.

Money is generated in integer cents and turned into exact ``decimal128``
columns; nothing passes through float.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from transforms.money import scaled_to_decimal

BUSINESS_TZ = ZoneInfo("America/Sao_Paulo")

CATEGORIAS = [
    "Eletrônicos", "Celulares", "Informática", "Eletrodomésticos", "Casa e Decoração",
    "Moda", "Esporte e Lazer", "Beleza e Perfumaria", "Brinquedos", "Livros",
    "Alimentos e Bebidas", "Automotivo", "Pet Shop", "Papelaria",
]  # fmt: skip
# typical list price per category, in reais
_BASE_PRICE = [1800, 1500, 2500, 1200, 180, 120, 250, 90, 110, 60, 40, 200, 80, 25]
_ADJETIVOS = ["Pro", "Max", "Plus", "Lite", "Ultra", "Slim", "Eco", "Prime", "Smart", "Mini"]
_PRIMEIROS = [
    "Ana", "Bruno", "Carla", "Diego", "Eduarda", "Felipe", "Gabriela", "Henrique", "Isabela",
    "João", "Larissa", "Marcos", "Natália", "Otávio", "Paula", "Rafael", "Sofia", "Thiago",
    "Vitória", "William", "Beatriz", "Lucas", "Mariana", "Pedro", "Júlia", "Gustavo",
]  # fmt: skip
_SOBRENOMES = [
    "Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira",
    "Lima", "Gomes", "Costa", "Ribeiro", "Martins", "Carvalho", "Almeida", "Lopes", "Araújo",
]  # fmt: skip
_CIDADES = [
    ("São Paulo", "SP", 12.3), ("Rio de Janeiro", "RJ", 6.7), ("Brasília", "DF", 3.0),
    ("Salvador", "BA", 2.9), ("Fortaleza", "CE", 2.7), ("Belo Horizonte", "MG", 2.5),
    ("Manaus", "AM", 2.2), ("Curitiba", "PR", 1.9), ("Recife", "PE", 1.6),
    ("Goiânia", "GO", 1.5), ("Porto Alegre", "RS", 1.5), ("Belém", "PA", 1.5),
    ("Campinas", "SP", 1.2), ("São Luís", "MA", 1.1), ("Florianópolis", "SC", 0.5),
    ("Vitória", "ES", 0.4), ("Natal", "RN", 0.9), ("Cuiabá", "MT", 0.6),
]  # fmt: skip
# relative sales by calendar month: quiet January/February, Black Friday, Christmas
_MONTH_WEIGHT = np.array([0.75, 0.7, 0.9, 0.9, 1.0, 0.95, 1.0, 1.0, 0.95, 1.05, 1.6, 1.8])
_WEEKDAY_WEIGHT = np.array([1.05, 1.0, 1.0, 1.05, 1.15, 0.85, 0.7])  # Monday..Sunday


@dataclass(frozen=True)
class DemoData:
    """The generated frames, in foreign-key order."""

    categorias: pd.DataFrame
    produtos: pd.DataFrame
    clientes: pd.DataFrame
    pedidos: pd.DataFrame
    fontes_externas: pd.DataFrame


def _zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    ranks = rng.permutation(n) + 1
    weights = 1.0 / ranks**exponent
    return weights / weights.sum()


def _timestamps(days: pd.DatetimeIndex, day_index: np.ndarray, rng: np.random.Generator) -> pd.Series:
    # Seconds into the local business day, peaking in the evening.
    seconds = np.clip(rng.normal(15.5 * 3600, 4.5 * 3600, len(day_index)), 0, 86_399).astype(np.int64)
    local = days.values[day_index] + seconds.astype("timedelta64[s]")
    aware = pd.DatetimeIndex(local).tz_localize(BUSINESS_TZ, nonexistent="shift_forward", ambiguous=False)
    return pd.Series(aware.as_unit("us"))


def demo_data(orders: int, *, seed: int = 42, end: dt.date | None = None, years: int = 2) -> DemoData:
    """Generate the demo shop: categories, products, customers, ``orders`` orders and external rows.

    Args:
        orders: number of ``Pedido`` rows.
        seed: random seed; the same seed and ``end`` give identical frames.
        end: last day with orders (default: yesterday, business time zone).
        years: how many whole years of history before ``end``.

    Example:
        >>> data = demo_data(1_000, seed=1, end=dt.date(2026, 11, 30))
        >>> len(data.pedidos), data.pedidos["total"].dtype
        (1000, decimal128(14, 2)[pyarrow])
    """
    if orders < 0:
        raise ValueError("orders must be >= 0")
    rng = np.random.default_rng(seed)
    end = end or (dt.datetime.now(BUSINESS_TZ).date() - dt.timedelta(days=1))
    start = dt.date(end.year - years, 1, 1)

    n_cat = len(CATEGORIAS)
    categorias = pd.DataFrame({"id": np.arange(1, n_cat + 1, dtype=np.int64), "nome": CATEGORIAS})

    n_prod = int(np.clip(orders // 200, 60, 5_000))
    prod_cat = rng.choice(n_cat, size=n_prod, p=_zipf_weights(n_cat, 0.8, rng))
    price_cents = np.round(np.array(_BASE_PRICE)[prod_cat] * rng.lognormal(0.0, 0.45, n_prod) * 100).astype(np.int64)
    price_cents = price_cents - price_cents % 10 + 9  # prices end in ,x9
    cost_cents = np.round(price_cents * rng.uniform(0.45, 0.8, n_prod)).astype(np.int64)
    prod_ids = np.arange(1, n_prod + 1, dtype=np.int64)
    produtos = pd.DataFrame(
        {
            "id": prod_ids,
            "nome": _join(
                np.array(CATEGORIAS)[prod_cat],
                np.array(_ADJETIVOS)[prod_ids % len(_ADJETIVOS)],
                _zero_padded(prod_ids, 4),
            ),
            "categoria_id": prod_cat.astype(np.int64) + 1,
            "preco": scaled_to_decimal(price_cents),
            "custo": scaled_to_decimal(cost_cents),
        }
    )

    n_cli = int(np.clip(orders // 15, 100, 200_000))
    first = rng.integers(0, len(_PRIMEIROS), n_cli)
    last = rng.integers(0, len(_SOBRENOMES), n_cli)
    city_p = np.array([c[2] for c in _CIDADES])
    city = rng.choice(len(_CIDADES), size=n_cli, p=city_p / city_p.sum())
    cli_ids = np.arange(1, n_cli + 1, dtype=np.int64)
    nomes = _join(np.array(_PRIMEIROS)[first], np.array(_SOBRENOMES)[last])
    clientes = pd.DataFrame(
        {
            "id": cli_ids,
            "nome": nomes,
            "email": _join(_ascii(nomes.str.lower()), _zero_padded(cli_ids, 1), sep=".") + "@exemplo.com.br",
            "cidade": np.array([c[0] for c in _CIDADES])[city],
            "uf": np.array([c[1] for c in _CIDADES])[city],
        }
    )

    days = pd.date_range(start, end, freq="D")
    trend = np.linspace(1.0, 1.0 + 0.25 * years, len(days))  # ~25% growth a year
    day_weight = _MONTH_WEIGHT[days.month - 1] * _WEEKDAY_WEIGHT[days.day_of_week] * trend
    day_index = rng.choice(len(days), size=orders, p=day_weight / day_weight.sum())
    criado_em = _timestamps(days, day_index, rng)

    produto = rng.choice(n_prod, size=orders, p=_zipf_weights(n_prod, 1.05, rng))
    cliente = rng.choice(n_cli, size=orders, p=_zipf_weights(n_cli, 0.6, rng))
    quantidade = rng.geometric(0.6, orders).astype(np.int64)  # mostly 1, sometimes more
    discount_pct = np.where(rng.random(orders) < 0.3, rng.integers(1, 16, orders), 0)
    gross = price_cents[produto] * quantidade
    # Banker's rounding of the discounted total, done in integers: exact.
    total_cents = _div_round_half_even(gross * (100 - discount_pct), 100)
    custo_cents = cost_cents[produto] * quantidade
    # A tenth of the orders were edited later (status changes, corrections).
    edited = rng.random(orders) < 0.1
    edit_delay = pd.to_timedelta(np.where(edited, rng.integers(60, 3 * 86_400, orders), 0), unit="s")
    # Edits happen by the end of the last day at the latest, never in the future.
    last_moment = pd.Timestamp(end + dt.timedelta(days=1), tz=BUSINESS_TZ) - pd.Timedelta(seconds=1)
    atualizado_em = (criado_em + edit_delay).clip(upper=last_moment)
    order_ids = np.arange(1, orders + 1, dtype=np.int64)
    pedidos = pd.DataFrame(
        {
            "id": order_ids,
            "cliente_id": cli_ids[cliente],
            "produto_id": prod_ids[produto],
            "quantidade": quantidade,
            "total": scaled_to_decimal(total_cents),
            "custo": scaled_to_decimal(custo_cents),
            "criado_em": criado_em,
            "atualizado_em": atualizado_em,
        }
    )

    n_ext = max(orders // 10, 10)
    ext_day = rng.integers(0, len(days), n_ext)
    fontes = pd.DataFrame(
        {
            "id_externo": "EXT-" + _zero_padded(np.arange(1, n_ext + 1), 8),
            "valor": scaled_to_decimal(rng.integers(100, 500_000, n_ext)),
            "data": _timestamps(days, ext_day, rng),
            "processado": np.zeros(n_ext, dtype=bool),
        }
    )
    return DemoData(categorias, produtos, clientes, pedidos, fontes)


def _ascii(text: pd.Series) -> pd.Series:
    return text.str.normalize("NFKD").str.encode("ascii", "ignore").str.decode("ascii")


def _zero_padded(numbers: np.ndarray, width: int) -> pd.Series:
    return pd.Series(numbers).astype(str).str.zfill(width)


def _join(*parts: np.ndarray | pd.Series, sep: str = " ") -> pd.Series:
    joined = pd.Series(parts[0]).astype(str)
    for part in parts[1:]:
        joined = joined + sep + pd.Series(part).astype(str).str.replace(" ", sep, regex=False)
    return joined.str.replace(" ", sep, regex=False) if sep != " " else joined


def _div_round_half_even(numerator: np.ndarray, denominator: int) -> np.ndarray:
    quotient, remainder = np.divmod(numerator, denominator)
    twice = 2 * remainder
    round_up = (twice > denominator) | ((twice == denominator) & (quotient % 2 == 1))
    return quotient + round_up
