"""The seed's ETL: unprocessed ``FonteExterna`` rows -> ``Destino``."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from dw_analytics.core.pipeline import BasePipeline
from dw_analytics.core.registry import register
from dw_analytics.extract.queryset import read_queryset
from dw_analytics.load.base import LoadResult
from dw_analytics.load.models import write_model
from dw_analytics.sales.models import Destino, FonteExterna
from transforms.external import destino_rows


@register
class ETLPipeline(BasePipeline):
    """Copy unprocessed external rows into ``Destino`` (``valor x 1.1``, ``data.date()``).

    Chunk by chunk, in one transaction: ``Destino`` rows are upserted on
    ``id_externo`` (its primary key) and the same source rows are marked
    ``processado``. A rerun finds nothing left to do; a failure rolls back
    both, so no row is ever processed twice or lost.

    Example:
        >>> log = ETLPipeline().run()  # doctest: +SKIP
        >>> log.n_processed, log.n_inserted  # doctest: +SKIP
        (10000, 10000)
    """

    name = "etl"
    description = "FonteExterna (processado=False) -> Destino: valor x 1.1 (half-even), data -> date"
    parameters = {"chunksize": int}
    chunked = True

    def extract(self) -> Iterator[pd.DataFrame]:
        pending = FonteExterna.objects.using(self.using).filter(processado=False).order_by("id")
        return read_queryset(
            pending.values("id", "id_externo", "valor", "data"), chunksize=self.params.get("chunksize", 50_000)
        )

    def transform(self, fontes: pd.DataFrame) -> pd.DataFrame:
        return destino_rows(fontes).assign(fonte_id=fontes["id"].to_numpy())

    def load(self, rows: pd.DataFrame) -> LoadResult:
        result = write_model(
            rows.drop(columns="fonte_id"), Destino, mode="upsert", unique_fields=["id_externo"], using=self.using
        )
        # Mark exactly the rows just loaded, not whatever arrived since the read.
        ids = rows["fonte_id"].tolist()
        for start in range(0, len(ids), 10_000):
            FonteExterna.objects.using(self.using).filter(id__in=ids[start : start + 10_000]).update(processado=True)
        return result
