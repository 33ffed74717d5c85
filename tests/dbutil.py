"""Helpers for tests that hand the test database to another process."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """A DATABASE_URL naming the test database this process uses now."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    user = settings.get("USER") or "postgres"
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{settings['NAME']}"


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process on the same test database."""
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "dw_analytics.settings"}
    env.pop("DW_REQUIRE_POSTGRES", None)
    env.update(extra)
    return env


def manage(*args: str) -> list[str]:
    """The command line of ``manage.py`` with this interpreter."""
    return [sys.executable, str(ROOT / "manage.py"), *args]
