"""Engines: the same transforms over partitioned data, in this process (pandas) or on Dask.

Example:
    >>> from dw_analytics.engines import open_engine, csv_partitions
    >>> with open_engine("pandas") as engine:  # or "dask", scheduler="tcp://host:8786"
    ...     engine.name
    'pandas'

The Dask engine lives in :mod:`dw_analytics.engines.dask` (imported on demand,
so the pandas path never imports ``distributed``).
"""

from dw_analytics.engines.base import (
    ENGINES,
    Engine,
    EngineError,
    EngineSession,
    PandasEngine,
    fact_sales_stream,
    open_engine,
)
from dw_analytics.engines.snapshot import staged_folder, staged_snapshot
from dw_analytics.engines.sources import (
    CsvPartition,
    MappedPartition,
    ParquetPartition,
    Partition,
    PartitionReport,
    SqlPartition,
    csv_partitions,
    database_url,
    map_partitions,
    parquet_partitions,
    sql_partitions,
)

__all__ = [
    "ENGINES",
    "CsvPartition",
    "Engine",
    "EngineError",
    "EngineSession",
    "MappedPartition",
    "PandasEngine",
    "ParquetPartition",
    "Partition",
    "PartitionReport",
    "SqlPartition",
    "csv_partitions",
    "database_url",
    "fact_sales_stream",
    "map_partitions",
    "open_engine",
    "parquet_partitions",
    "sql_partitions",
    "staged_folder",
    "staged_snapshot",
]
