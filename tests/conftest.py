"""Shared test set-up.

``make test`` runs the suite twice: on SQLite, then on PostgreSQL with
``DW_REQUIRE_POSTGRES=1``, where a missing server is a failure, never a skip.
"""

from __future__ import annotations

import os

import pytest
from django.conf import settings


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("DW_REQUIRE_POSTGRES") == "1":
        engine = settings.DATABASES["default"]["ENGINE"]
        if "postgresql" not in engine:
            raise pytest.UsageError(
                f"DW_REQUIRE_POSTGRES=1 but the default database engine is {engine}; set DATABASE_URL"
            )


def pytest_report_header(config: pytest.Config) -> str:
    db = settings.DATABASES["default"]
    return f"dw_analytics database: {db['ENGINE']} {db.get('HOST') or ''} {db['NAME']}"


@pytest.fixture(autouse=True)
def output_dir(tmp_path, settings, monkeypatch):
    """A fresh ``DW_OUTPUT_DIR`` for every test, also for the processes it starts.

    No test reads or writes the project's own ``data/out``: after ``make demo``
    its snapshot would otherwise show up in what the tests read.
    """
    settings.DW_OUTPUT_DIR = tmp_path / "out"
    settings.DW_OUTPUT_DIR.mkdir()
    monkeypatch.setenv("DW_OUTPUT_DIR", str(settings.DW_OUTPUT_DIR))
    return settings.DW_OUTPUT_DIR
