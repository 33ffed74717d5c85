"""The seed's ETL rule for external rows: ``valor x 1.1`` and ``data.date()``."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: the seed's uplift; exact in Decimal
UPLIFT = Decimal("1.1")


def destino_rows(fontes: pd.DataFrame, *, uplift: Decimal = UPLIFT, tz: str = "America/Sao_Paulo") -> pd.DataFrame:
    """``Destino`` rows from ``FonteExterna`` rows.

    ``valor`` is multiplied by ``uplift`` in exact decimal arithmetic and
    rounded half-even back to the input's scale (2 places: 10.05 x 1.1 =
    11.055 -> 11.06, 10.15 x 1.1 = 11.165 -> 11.16). ``data`` (a time-zone
    aware timestamp) becomes the calendar date in ``tz``, the business time
    zone, not UTC's date.

    Args:
        fontes: columns ``id_externo``, ``valor`` (decimal128), ``data``
            (tz-aware datetime).

    Returns:
        A new frame with ``id_externo``, ``valor`` (same decimal type as the
        input), ``data`` (``date32``).

    Example:
        >>> from transforms.money import money_dtype
        >>> fontes = pd.DataFrame({
        ...     "id_externo": ["A"],
        ...     "valor": pd.Series([Decimal("10.05")], dtype=money_dtype(14, 2)),
        ...     "data": pd.to_datetime(["2026-01-01 01:30Z"]),
        ... })
        >>> out = destino_rows(fontes)
        >>> out["valor"].tolist(), out["data"].astype(str).tolist()
        ([Decimal('11.06')], ['2025-12-31'])
    """
    valor = pa.array(fontes["valor"])
    if not pa.types.is_decimal(valor.type):
        raise TypeError(f"'valor' must be a decimal128 column, got {valor.type}")
    factor = pa.scalar(uplift, pa.decimal128(len(uplift.as_tuple().digits), -uplift.as_tuple().exponent))
    product = pc.multiply(valor, factor)
    rounded = pc.round(product, ndigits=valor.type.scale, round_mode="half_to_even").cast(valor.type)
    local_day = fontes["data"].dt.tz_convert(tz).dt.tz_localize(None).dt.floor("D")
    return pd.DataFrame(
        {
            "id_externo": fontes["id_externo"].to_numpy(),
            "valor": pd.arrays.ArrowExtensionArray(rounded),
            "data": pd.arrays.ArrowExtensionArray(pa.array(local_day).cast(pa.date32())),
        }
    )
