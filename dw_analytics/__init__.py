"""dw_analytics: a pandas-centric data-warehouse builder for Django.

Importing the package is cheap and does not touch Django; the public
functions are loaded on first use::

    import dw_analytics as dw
    dw.setup()                      # configure Django (notebooks, scripts)
    df = dw.read_queryset(Pedido.objects.all())
"""

from __future__ import annotations

import importlib
import os
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_PUBLIC = {
    "read_queryset": "dw_analytics.extract.queryset",
    "read_csv_chunks": "dw_analytics.extract.csv",
    "read_sql": "dw_analytics.extract.sql",
    "read_excel": "dw_analytics.extract.excel",
    "write_model": "dw_analytics.load.models",
    "write_parquet": "dw_analytics.load.parquet",
    "write_excel": "dw_analytics.load.excel",
    "publish_snapshot": "dw_analytics.load.parquet",
    "read_snapshot": "dw_analytics.load.parquet",
    "open_snapshot": "dw_analytics.load.parquet",
    "list_snapshot_versions": "dw_analytics.load.parquet",
    "LoadResult": "dw_analytics.load.base",
    "BasePipeline": "dw_analytics.core.pipeline",
    "RunLog": "dw_analytics.core.runlog",
    "register": "dw_analytics.core.registry",
    "get_pipeline": "dw_analytics.core.registry",
    "run": "dw_analytics.core.api",
    "catalog": "dw_analytics.notebook",
    "load_table": "dw_analytics.notebook",
    "pipeline_from_function": "dw_analytics.notebook",
    "sales_report": "dw_analytics.reports",
}

__all__ = ["setup", *_PUBLIC]


def setup(settings_module: str = "dw_analytics.settings") -> None:
    """Configure Django so the ORM and the pipelines work in a notebook or script.

    Honours ``DATABASE_URL`` through the project's settings. Safe to call twice.

    Example:
        >>> import dw_analytics as dw
        >>> dw.setup()
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module)
    # Jupyter runs an event loop; Django refuses ORM calls from async contexts
    # unless told this synchronous use is intended.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'dw_analytics' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
