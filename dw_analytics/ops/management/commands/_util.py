"""Helpers shared by the ops commands."""

from __future__ import annotations

import getpass
import os

from django.core.management.base import CommandError


def parse_pairs(pairs: list[str], option: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a pair without ``=`` is a user error."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CommandError(f"{option} expects KEY=VALUE, got {pair!r}")
        result[key.strip()] = value
    return result


def split_list(text: str | None) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]``; None or empty -> ``[]``."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def current_user() -> str:
    """Who runs the command, for the audit records."""
    try:
        return os.environ.get("DW_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "manage.py"
