"""On-demand and integration jobs, built on extract / transform / load and the pipeline engine.

* :mod:`~dw_analytics.jobs.export`: stream a model, warehouse table or named query to
  Parquet, CSV or Excel (``export_source``).
* :mod:`~dw_analytics.jobs.corrections`: validate, dry-run, apply and revert batch corrections.
* :mod:`~dw_analytics.jobs.recalculate`: rebuild derived tables for a date range and report
  what changed.
* :mod:`~dw_analytics.jobs.sync`: copy any SQLAlchemy source into a model, incrementally.
* :mod:`~dw_analytics.jobs.consolidate`: load many branch files through a declared mapping,
  each file once.

Importing a module registers its pipelines (``export``, ``apply_corrections``,
``revert_corrections``, ``sync``, ``consolidate``).
"""
