"""Small helpers shared by the jobs: model lookup, checksums, typed empty frames."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pandas as pd
from django.apps import apps
from django.db import connections, models

from dw_analytics.core.exceptions import ConfigurationError
from dw_analytics.extract.queryset import read_queryset

_HASH_BLOCK = 1 << 20


def parse_bool(value: object) -> bool:
    """A boolean from a parameter value: ``True``, ``"true"``, ``"1"``, ``"yes"``...

    Example:
        >>> parse_bool("no")
        False
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected a boolean (true/false), got {value!r}")


def parse_list(value: object) -> list[str]:
    """A list parameter: a list as is, or ``"a,b"`` from the command line (``--param keys=a,b``).

    Example:
        >>> parse_list("id, email")
        ['id', 'email']
    """
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def parse_dict(value: object) -> dict:
    """A mapping parameter: a dict as is, or JSON text from the command line.

    Example:
        >>> parse_dict('{"uf": "SP"}')
        {'uf': 'SP'}
    """
    if isinstance(value, dict):
        return dict(value)
    parsed = json.loads(str(value))
    if not isinstance(parsed, dict):
        raise ValueError(f"expected a JSON object, got {value!r}")
    return parsed


def get_model(label: str | type[models.Model]) -> type[models.Model]:
    """The model named ``app_label.ModelName`` (case-insensitive model name).

    Raises:
        ConfigurationError: unknown label; the message lists the installed models.

    Example:
        >>> get_model("sales.Pedido").__name__  # doctest: +SKIP
        'Pedido'
    """
    if isinstance(label, type) and issubclass(label, models.Model):
        return label
    try:
        app_label, model_name = str(label).split(".", 1)
        return apps.get_model(app_label, model_name)
    except (ValueError, LookupError):
        valid = ", ".join(sorted(m._meta.label for m in apps.get_models() if m._meta.app_label in _OUR_APPS))
        raise ConfigurationError(
            f"unknown model {label!r}; expected 'app_label.Model', e.g. one of: {valid}",
            option="model",
        ) from None


_OUR_APPS = {"sales", "warehouse", "ops"}


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks.

    Example:
        >>> len(file_sha256(__file__))
        64
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def field_for(model: type[models.Model], column: str) -> models.Field | None:
    """The concrete field a column names (by name, attname or db column), or None."""
    for f in model._meta.concrete_fields:
        if column in (f.name, f.attname, f.column):
            return f
    return None


def model_frame(model: type[models.Model], columns: list[str], using: str) -> pd.DataFrame:
    """An empty frame with the dtypes ``read_queryset`` gives these model columns."""
    return read_queryset(model.objects.using(using).none(), fields=columns)


def sqlalchemy_url(using: str = "default") -> str:
    """An SQLAlchemy URL for a Django database alias (SQLite or PostgreSQL).

    Example:
        >>> sqlalchemy_url().startswith(("sqlite", "postgresql"))  # doctest: +SKIP
        True
    """
    settings = connections[using].settings_dict
    vendor = connections[using].vendor
    if vendor == "sqlite":
        return f"sqlite:///{Path(settings['NAME']).absolute()}"
    if vendor == "postgresql":
        from sqlalchemy.engine import URL

        return URL.create(
            "postgresql+psycopg",
            username=settings.get("USER") or None,
            password=settings.get("PASSWORD") or None,
            host=settings.get("HOST") or None,
            port=int(settings["PORT"]) if settings.get("PORT") else None,
            database=settings["NAME"],
        ).render_as_string(hide_password=False)
    raise ConfigurationError(f"SQL queries are supported on SQLite and PostgreSQL, not {vendor}")
