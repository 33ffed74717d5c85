"""``manage.py refresh_warehouse``: the nightly job."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from dw_analytics.core.api import run
from dw_analytics.warehouse.reporting import format_run_log, text_table


class Command(BaseCommand):
    help = "Run the nightly refresh (etl, analytics, published Parquet and Excel) and print a summary."

    def handle(self, *args, **options) -> None:
        log = run("nightly", raise_errors=False, triggered_by="refresh_warehouse")
        self.stdout.write(format_run_log(log))
        if not log.succeeded:
            raise CommandError(f"nightly refresh failed (run {log.run_id}): {log.error}")
        outputs = log.result["outputs"]
        self.stdout.write("")
        self.stdout.write(text_table(["output", "path"], sorted(outputs.items())))
        self.stdout.write(self.style.SUCCESS(f"Nightly refresh succeeded in {log.duration_s:.1f} s."))
