"""Django app configuration of the operations app."""

from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "dw_analytics.ops"
    label = "ops"
    verbose_name = "Operations: exports, corrections, consolidation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Register the jobs' pipelines (export, apply_corrections, revert_corrections,
        # sync, consolidate) so list_pipelines, run history and Celery know them.
        from dw_analytics.jobs import consolidate, corrections, export, sync  # noqa: F401
