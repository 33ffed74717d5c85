"""Writes on the sales app."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from dw_analytics.load.models import write_model
from dw_analytics.sales.demo import demo_data
from dw_analytics.sales.models import Categoria, Cliente, Destino, FonteExterna, Pedido, Produto

# children first, for deletes
_SALES_MODELS = [Pedido, Destino, FonteExterna, Produto, Cliente, Categoria]


def demo_data_create(
    *,
    orders: int,
    seed: int = 42,
    end: dt.date | None = None,
    years: int = 2,
    reset: bool = False,
    using: str = "default",
) -> dict[str, int] | None:
    """Generate the demo shop and write it in one transaction.

    Returns the row count per model, or None when orders already exist and
    ``reset`` is False (so running it twice is safe).

    Example:
        >>> demo_data_create(orders=1_000, seed=1)  # doctest: +SKIP
        {'categorias': 14, 'produtos': 60, 'clientes': 100, 'pedidos': 1000, 'fontes_externas': 100}
    """
    with transaction.atomic(using=using):
        if Pedido.objects.using(using).exists() and not reset:
            return None
        for model in _SALES_MODELS:
            model.objects.using(using).all().delete()
        data = demo_data(orders, seed=seed, end=end, years=years)
        targets = {
            "categorias": (data.categorias, Categoria),
            "produtos": (data.produtos, Produto),
            "clientes": (data.clientes, Cliente),
            "pedidos": (data.pedidos, Pedido),
            "fontes_externas": (data.fontes_externas, FonteExterna),
        }
        for frame, model in targets.values():
            write_model(frame, model, mode="append", using=using)
        _reset_sequences(using, [model for _, model in targets.values()])
    return {name: len(frame) for name, (frame, _) in targets.items()}


def _reset_sequences(using: str, models: list) -> None:
    # Rows were written with explicit ids; PostgreSQL's sequences must move past them.
    from django.core.management.color import no_style
    from django.db import connections

    connection = connections[using]
    statements = connection.ops.sequence_reset_sql(no_style(), models)
    if statements:
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)
