"""One run of a pipeline at a time.

PostgreSQL: a session-level advisory lock on the run's connection (released
by the server if the process dies). Other databases (SQLite): a lock row in
``PipelineLock``, checked by a read first so that a second run exits at once
even while the first holds SQLite's write lock. A lock row left by a dead
process (same host, pid gone) or older than ``stale_after`` is taken over.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.db import DatabaseError, IntegrityError, connections, transaction
from django.utils import timezone

from dw_analytics.core.exceptions import DWError

#: exit code of the commands when the pipeline is already running (1 = failed run, 2 = usage)
EXIT_LOCKED = 3
#: a lock row older than this is considered abandoned
DEFAULT_STALE_AFTER = timedelta(hours=12)


class PipelineLocked(DWError):
    """Another run of the same pipeline holds the lock; retrying later can succeed."""

    retryable = True


def _advisory_key(name: str) -> int:
    digest = hashlib.blake2b(f"dw_analytics:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_is_dead(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@contextmanager
def pipeline_lock(name: str, *, using: str = "default", stale_after: timedelta = DEFAULT_STALE_AFTER) -> Iterator[None]:
    """Hold the lock of pipeline ``name`` for the duration of the block.

    Raises:
        PipelineLocked: another live run holds it (the message names the holder).

    Example:
        >>> with pipeline_lock("nightly"):  # doctest: +SKIP
        ...     run_the_night()
    """
    connection = connections[using]
    if connection.vendor == "postgresql":
        with _advisory_lock(connection, name):
            yield
    else:
        with _row_lock(name, using, stale_after):
            yield


@contextmanager
def _advisory_lock(connection, name: str) -> Iterator[None]:
    key = _advisory_key(name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        acquired = cursor.fetchone()[0]
    if not acquired:
        raise PipelineLocked(
            f"pipeline {name!r} is already running (PostgreSQL advisory lock {key} is held)",
            pipeline=name,
        )
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        except DatabaseError:
            pass  # the session is gone, and the server released its locks with it


@contextmanager
def _row_lock(name: str, using: str, stale_after: timedelta) -> Iterator[None]:
    from dw_analytics.warehouse.models import PipelineLock

    locks = PipelineLock.objects.using(using)
    owner = _owner()
    held = locks.filter(pipeline=name).first()
    if held is not None:
        if not (_owner_is_dead(held.owner) or timezone.now() - held.acquired_at > stale_after):
            raise PipelineLocked(
                f"pipeline {name!r} is already running (locked by {held.owner} since "
                f"{timezone.localtime(held.acquired_at):%Y-%m-%d %H:%M:%S})",
                pipeline=name,
            )
        # Abandoned: take it over only if nobody else did in between.
        if not locks.filter(pk=held.pk, owner=held.owner).update(owner=owner, acquired_at=timezone.now()):
            raise PipelineLocked(
                f"pipeline {name!r} is already running (lock just taken by another run)",
                pipeline=name,
            )
    else:
        try:
            with transaction.atomic(using=using):
                locks.create(pipeline=name, owner=owner, acquired_at=timezone.now())
        except IntegrityError:
            raise PipelineLocked(
                f"pipeline {name!r} is already running (lock just taken by another run)",
                pipeline=name,
            ) from None
    try:
        yield
    finally:
        locks.filter(pipeline=name, owner=owner).delete()
