"""The database connection drops in the middle of a run (PostgreSQL: the backend is terminated).

The run must fail cleanly (nothing of it committed), be recorded as failed,
say that a retry can help, and the retry must succeed. SQLite has no server
connection to lose, so these tests run only in the PostgreSQL half.
"""

from __future__ import annotations

import threading

import pandas as pd
import psycopg
import pytest
from django.db import connection

from dw_analytics.core.pipeline import BasePipeline
from dw_analytics.core.retry import is_transient
from dw_analytics.load.base import LoadResult
from dw_analytics.load.models import write_model
from dw_analytics.sales.models import Categoria
from dw_analytics.warehouse.models import PipelineRun
from tests.dbutil import database_url

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="SQLite is embedded: there is no server connection that can drop (PostgreSQL-only test)",
    ),
    pytest.mark.django_db(transaction=True),
]


class DroppedConnectionPipeline(BasePipeline):
    """Loads categories, then waits inside its transaction until ``hook`` has run."""

    name = "test_reliability_dropped_connection"
    parameters = {"drop": bool}

    def __init__(self, *, hook=None, **params):
        super().__init__(**params)
        self.hook = hook

    def extract(self) -> pd.DataFrame:
        return pd.DataFrame({"nome": [f"categoria {i}" for i in range(500)]})

    def load(self, frame: pd.DataFrame) -> LoadResult:
        result = write_model(frame, Categoria, mode="append", using=self.using)
        if self.params.get("drop"):
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backend = cursor.fetchone()[0]
            self.hook(backend)  # another session terminates this backend now
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM sales_categoria")  # the first statement after the drop
        return result


def terminate_from_another_session(backend: int) -> None:
    """pg_terminate_backend(backend), issued from a thread on its own connection."""
    errors: list[BaseException] = []

    def kill() -> None:
        try:
            url = database_url().replace("postgres://", "postgresql://", 1)
            with psycopg.connect(url, autocommit=True) as admin:
                terminated = admin.execute("SELECT pg_terminate_backend(%s)", [backend]).fetchone()[0]
                assert terminated, f"backend {backend} was not terminated"
        except BaseException as exc:  # reported in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=kill)
    thread.start()
    thread.join(timeout=30)
    if errors:
        raise errors[0]


def test_a_run_whose_connection_is_terminated_fails_cleanly_is_recorded_and_a_retry_succeeds():
    Categoria.objects.create(nome="before")

    with pytest.raises(Exception) as info:
        DroppedConnectionPipeline(drop=True, hook=terminate_from_another_session).run()

    assert is_transient(info.value), f"{type(info.value).__name__}: {info.value}"
    assert list(Categoria.objects.values_list("nome", flat=True)) == ["before"]  # nothing half-written
    record = PipelineRun.objects.get(pipeline=DroppedConnectionPipeline.name)
    assert record.status == "failed"
    assert "terminat" in record.error.lower() or "closed" in record.error.lower(), record.error
    assert record.finished_at is not None

    retry = DroppedConnectionPipeline().run()

    assert retry.status == "succeeded" and retry.n_inserted == 500
    assert Categoria.objects.count() == 501
    statuses = list(
        PipelineRun.objects.filter(pipeline=DroppedConnectionPipeline.name)
        .order_by("pk")
        .values_list("status", flat=True)
    )
    assert statuses == ["failed", "succeeded"]
