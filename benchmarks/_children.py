"""Child processes of the nightly benchmarks: a fresh database, Django commands, one peak RSS each.

``benchmarks/nightly.py`` and ``benchmarks/soak.py`` run every step (migrate, generate,
each night) in its own process so that each peak RSS belongs to that step alone.

Example::

    env = child_env(fresh_database("sqlite", folder, "bench"), folder)
    run_child(manage("migrate", "-v", "0"), env)
    seconds, peak_mb, log = nightly_log(env, "mode=full")
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def child_env(database_url: str, folder: Path, **settings: str) -> dict[str, str]:
    """The environment of a child: this database, outputs under ``folder``, no progress bars."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DW_DATA_DIR": str(folder),
        "DW_OUTPUT_DIR": str(folder / "out"),
        "DJANGO_SETTINGS_MODULE": "dw_analytics.settings",
        "DW_PROGRESS": "0",
        **settings,
    }


def run_child(args: list[str], env: dict[str, str], *, may_fail: bool = False) -> tuple[int, float, float, str]:
    """Run a child; return (exit status, seconds, peak RSS MB of that child alone, stdout).

    ``os.wait4`` gives the rusage of this one child (``RUSAGE_CHILDREN`` would be the
    largest of all children so far, the data generator included).
    """
    started = time.perf_counter()
    child = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Read both pipes to the end (a thread for stderr), then reap the child with wait4.
    with ThreadPoolExecutor(1) as pool:
        err_future = pool.submit(child.stderr.read)
        out = child.stdout.read()
        err = err_future.result()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if child.returncode != 0 and not may_fail:
        raise SystemExit(f"{' '.join(args[:5])} failed ({child.returncode}):\n{out}\n{err}")
    return child.returncode, elapsed, usage.ru_maxrss / 1024, out


def manage(*args: str) -> list[str]:
    """A ``manage.py`` command line."""
    return [sys.executable, str(ROOT / "manage.py"), *args]


def nightly_log(env: dict[str, str], *params: str) -> tuple[float, float, dict]:
    """Run one nightly refresh; return (seconds, peak RSS MB, its run log), failing unless it succeeded."""
    args = manage("run_pipeline", "nightly", "--json", "--quiet", *[f"--param={p}" for p in params])
    _, seconds, peak, out = run_child(args, env)
    log = json.loads(out)
    assert log["status"] == "succeeded", log["error"]
    return seconds, peak, log


def fresh_database(backend: str, folder: Path, name: str) -> str:
    """The URL of an empty database: a file in ``folder`` (SQLite) or database ``name`` (PostgreSQL)."""
    if backend == "sqlite":
        return f"sqlite:///{folder / f'{name}.sqlite3'}"
    drop_database(backend, name)
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def drop_database(backend: str, name: str) -> None:
    """Drop PostgreSQL database ``name`` (a SQLite file goes with its folder)."""
    if backend == "sqlite":
        return
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
