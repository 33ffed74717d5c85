"""Defer a table's secondary indexes during a bulk load: drop them, load, build them once.

Inserting millions of rows into B-tree indexes keyed by random values
(foreign keys, dates) costs a page miss per row once the indexes outgrow the
cache; building each index once at the end sorts instead. Both SQLite and
PostgreSQL have transactional DDL, so inside the load's transaction readers
keep seeing the old table and its indexes until commit, and a failure
restores everything. Unique indexes (keys, upsert targets) are never dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections, models, transaction

_LIST_INDEXES = {
    "sqlite": (
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s "
        "AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE%%'"
    ),
    "postgresql": (
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
        "AND tablename = %s AND indexdef NOT LIKE 'CREATE UNIQUE%%'"
    ),
}


@contextmanager
def deferred_indexes(model: type[models.Model], *, using: str = "default") -> Iterator[list[str]]:
    """Drop ``model``'s non-unique indexes for the block and recreate them after it.

    Must run inside a transaction (it opens one if needed). Other backends
    run the block unchanged. Yields the names of the dropped indexes.

    Example:
        >>> with deferred_indexes(FactSales):  # doctest: +SKIP
        ...     for chunk in chunks:
        ...         write_model(chunk, FactSales, mode="append")
    """
    connection = connections[using]
    query = _LIST_INDEXES.get(connection.vendor)
    if query is None:
        yield []
        return
    with transaction.atomic(using=using):
        with connection.cursor() as cursor:
            cursor.execute(query, [model._meta.db_table])
            indexes = cursor.fetchall()
            for name, _ in indexes:
                cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
        yield [name for name, _ in indexes]
        with connection.cursor() as cursor:
            for _, create_sql in indexes:
                cursor.execute(create_sql)
