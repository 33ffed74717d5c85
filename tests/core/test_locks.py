"""One run of a pipeline at a time: advisory locks on PostgreSQL, lock rows elsewhere."""

from __future__ import annotations

import datetime as dt
import os
import socket
import time

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from dw_analytics.core.locks import PipelineLocked, _advisory_key, pipeline_lock
from dw_analytics.core.pipeline import BasePipeline
from dw_analytics.warehouse.models import PipelineLock, PipelineRun


class Noop(BasePipeline):
    name = "test_noop"


def _other_session_holds_advisory_lock(name: str) -> psycopg.Connection:
    params = connection.get_connection_params()
    other = psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"}, autocommit=True)
    other.execute("SELECT pg_advisory_lock(%s)", [_advisory_key(name)])
    return other


def _wait_for_backend_exit(pid: int) -> None:
    # The server ends a closed session's backend asynchronously.
    deadline = time.monotonic() + 10
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # stats are cached per transaction
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.05)
    raise AssertionError(f"backend {pid} did not exit")


@pytest.mark.django_db
def test_a_second_run_exits_at_once_while_the_lock_is_held():
    if connection.vendor == "postgresql":
        holder = _other_session_holds_advisory_lock("test_noop")
        expected = "advisory lock"
    else:
        PipelineLock.objects.create(pipeline="test_noop", owner="elsewhere:1", acquired_at=timezone.now())
        holder, expected = None, "locked by elsewhere:1"
    try:
        with pytest.raises(PipelineLocked, match=f"pipeline 'test_noop' is already running.*{expected}") as excinfo:
            Noop().run()
        assert excinfo.value.retryable
        assert not PipelineRun.objects.exists()  # refused before anything was recorded
    finally:
        if holder is not None:
            pid = holder.info.backend_pid
            holder.close()  # a holder that dies releases the lock with its session
            _wait_for_backend_exit(pid)
        PipelineLock.objects.all().delete()

    assert Noop().run().succeeded


@pytest.mark.django_db
def test_the_lock_is_released_after_a_failed_run():
    class Failing(BasePipeline):
        name = "test_failing_lock"

        def extract(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        Failing().run()
    with pipeline_lock("test_failing_lock"):
        pass
    assert not PipelineLock.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "owner, age",
    [(f"{socket.gethostname()}:999999999", dt.timedelta(0)), ("elsewhere:1", dt.timedelta(hours=13))],
    ids=["dead-process", "older-than-stale-timeout"],
)
def test_an_abandoned_lock_is_taken_over(owner, age):
    if connection.vendor == "postgresql":
        # A crashed holder's session ends, and the server drops its advisory locks.
        holder = _other_session_holds_advisory_lock("test_noop")
        pid = holder.info.backend_pid
        holder.close()
        _wait_for_backend_exit(pid)
    else:
        PipelineLock.objects.create(pipeline="test_noop", owner=owner, acquired_at=timezone.now() - age)

    assert Noop().run().succeeded
    assert not PipelineLock.objects.exists()


def test_lock_owner_names_this_process():
    from dw_analytics.core.locks import _owner

    assert _owner() == f"{socket.gethostname()}:{os.getpid()}"
