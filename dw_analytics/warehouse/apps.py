from django.apps import AppConfig


class WarehouseConfig(AppConfig):
    name = "dw_analytics.warehouse"
    label = "warehouse"
    verbose_name = "Warehouse"

    def ready(self) -> None:
        # Registers the project's pipelines by name.
        from dw_analytics import pipelines  # noqa: F401
