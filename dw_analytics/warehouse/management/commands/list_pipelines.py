"""``manage.py list_pipelines``: the registered pipelines."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from dw_analytics.core.registry import all_pipelines
from dw_analytics.warehouse.reporting import text_table


class Command(BaseCommand):
    help = "List the registered pipelines with their parameters."

    def handle(self, *args, **options) -> None:
        rows = [
            [name, ", ".join(sorted(cls.parameters)) or "-", cls.description] for name, cls in all_pipelines().items()
        ]
        self.stdout.write(text_table(["name", "parameters", "description"], rows))
