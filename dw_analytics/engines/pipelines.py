"""``sales_partitioned``: sales by category (and optionally the star-schema fact) from a partitioned source.

Runs on the engine the run asks for (``engine=dask``, ``scheduler=tcp://...``)
or ``settings.DW_ENGINE``; the results are the same on every engine. Small
inputs (products, categories, customers) and small outputs
(``SalesByCategory``) stay on the client; the orders are read, aggregated and
(with ``snapshot=``) turned into fact rows and written by the workers.

Example::

    python manage.py run_pipeline sales_partitioned --param source=/shared/orders/ \\
        --param engine=dask --param scheduler=tcp://10.0.0.5:8786 --param snapshot=star
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

from django.utils import timezone

from dw_analytics.core.exceptions import ConfigurationError
from dw_analytics.core.pipeline import BasePipeline
from dw_analytics.core.registry import register
from dw_analytics.engines.base import ENGINES, EngineSession
from dw_analytics.engines.sources import (
    Partition,
    csv_partitions,
    database_url,
    parquet_partitions,
    sql_partitions,
)
from dw_analytics.extract.queryset import read_queryset
from dw_analytics.load.models import write_model
from dw_analytics.sales.models import Categoria, Cliente, Pedido, Produto
from dw_analytics.warehouse.models import SalesByCategory
from transforms.star import dim_category, dim_customer, dim_product

ORDER_COLUMNS = ["id", "cliente_id", "produto_id", "quantidade", "total", "custo", "criado_em"]
MONEY_SCALES = {"total": 2, "custo": 2}


def _engine_name(value: str) -> str:
    if value not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}; got {value!r}")
    return value


@register
class SalesPartitionedPipeline(BasePipeline):
    """Sales by category over a partitioned source; with ``snapshot=`` also the fact + dimensions.

    Parameters (``--param key=value``):

    * ``source``: a CSV folder or glob, a (hive) Parquet folder, or
      ``database`` (the ``sales_pedido`` table read in primary-key ranges; the
      workers connect with this database's URL).
    * ``engine``: ``pandas`` or ``dask`` (default ``settings.DW_ENGINE``);
      ``scheduler``: ``tcp://host:8786`` (default ``settings.DW_DASK_SCHEDULER``,
      empty = a LocalCluster).
    * ``partitions``: key ranges for ``source=database`` (default one per 2M rows).
    * ``chunksize``: rows per chunk on the workers.
    * ``snapshot``: a folder under ``DW_OUTPUT_DIR``: publish ``fact_sales``
      (written by the workers) with ``dim_category``, ``dim_customer`` and
      ``dim_product`` as one snapshot.

    Example:
        >>> log = SalesPartitionedPipeline(source="orders/", engine="dask").run()  # doctest: +SKIP
    """

    name = "sales_partitioned"
    description = "Sales by category (and the sales fact) from partitioned orders, on pandas or Dask"
    parameters = {
        "source": str,
        "engine": _engine_name,
        "scheduler": str,
        "partitions": int,
        "chunksize": int,
        "snapshot": str,
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if "source" not in self.params:
            raise ConfigurationError("sales_partitioned needs source=<CSV folder or glob | Parquet folder | database>")

    def partitions(self) -> list[Partition]:
        """The order partitions the source names."""
        source = self.params["source"]
        chunksize = self.params.get("chunksize", 200_000)
        if source == "database":
            return sql_partitions(
                database_url(self.using),
                Pedido._meta.db_table,
                columns=ORDER_COLUMNS,
                n_partitions=self.params.get("partitions"),
                chunksize=chunksize,
            )
        path = Path(source).expanduser()
        is_parquet = path.suffix == ".parquet" or (
            path.is_dir() and any(path.rglob("*.parquet")) and not any(path.glob("*.csv*"))
        )
        if is_parquet:
            return parquet_partitions(path, batch_size=chunksize)
        return csv_partitions(source, decimals=MONEY_SCALES, dates=["criado_em"], chunksize=chunksize)

    def _session(self) -> Any:
        # Once BasePipeline owns an EngineSession (``self.engines``, see docs/scale.md) it
        # opens and closes the engine; until then this pipeline takes engine/scheduler params.
        shared = getattr(self, "engines", None)
        if isinstance(shared, EngineSession):
            return nullcontext(shared)
        return EngineSession(self.params.get("engine"), scheduler=self.params.get("scheduler"))

    def execute(self) -> dict[str, Any]:
        with self._session() as session:
            self.active_engine = session.engine
            parts = self.step("extract", self.partitions)
            reference = self.step("reference", self.read_reference)
            by_category = self.step("transform", self.sales_by_category, parts, reference)
            self.step("load", self.load_sales, by_category)
            result: dict[str, Any] = {"engine": self.active_engine.name, "sales_by_category": by_category}
            if "snapshot" in self.params:
                result["snapshot"] = self.step("snapshot", self.publish_star, parts, reference)
            result["partitions"] = [vars(r) | {"quarantine": None} for r in self.active_engine.reports]
        return result

    def read_reference(self) -> dict[str, Any]:
        """Products, categories and customers: small, read on the client."""
        return {
            "categories": read_queryset(Categoria.objects.using(self.using).values("id", "nome")),
            "products": read_queryset(
                Produto.objects.using(self.using).values("id", "nome", "categoria_id", "preco", "custo")
            ),
            "customers": read_queryset(Cliente.objects.using(self.using).values("id", "nome", "email", "cidade", "uf")),
        }

    def sales_by_category(self, parts: list[Partition], reference: dict[str, Any]) -> Any:
        table = self.active_engine.sales_by_category(parts, reference["products"], reference["categories"])
        self.add_processed(self.active_engine.n_rows)
        self.quarantine(self.active_engine.quarantine)
        return table

    def load_sales(self, table: Any) -> Any:
        return write_model(
            table.assign(atualizado_em=timezone.now()),
            SalesByCategory,
            mode="replace",
            using=self.using,
        )

    def publish_star(self, parts: list[Partition], reference: dict[str, Any]) -> Any:
        """The fact (built and written by the workers) and the dimensions, as one snapshot."""
        dims = {
            "dim_category": dim_category(reference["categories"]),
            "dim_customer": dim_customer(reference["customers"]),
            "dim_product": dim_product(reference["products"], reference["categories"]),
        }
        facts = self.active_engine.fact_sales(parts, dims)
        return self.active_engine.publish_snapshot(
            {"fact_sales": facts, **dims}, self.params["snapshot"], run_id=self.log.run_id
        )
