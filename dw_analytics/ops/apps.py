"""Django app configuration of the operations app."""

from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "dw_analytics.ops"
    label = "ops"
    verbose_name = "Operations: exports, corrections, consolidation"
    default_auto_field = "django.db.models.BigAutoField"
