"""``manage.py pipeline_status``: what runs now, live."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from dw_analytics.core.status import live_status
from dw_analytics.warehouse.models import PipelineRun
from dw_analytics.warehouse.reporting import text_table


class Command(BaseCommand):
    help = "List running pipelines: current step, rows done, rows/s, elapsed, memory."

    def handle(self, *args, **options) -> None:
        running = PipelineRun.objects.filter(status=PipelineRun.Status.RUNNING).order_by("started_at")
        rows = []
        for run in running:
            live = live_status(run)
            rows.append(
                [
                    run.pk, run.pipeline, live["current_step"] or "-", f"{live['rows_done']:,}",
                    f"{live['rows_per_s']:,.0f}", f"{live['elapsed_s']:.0f}",
                    "" if live["rss_mb"] is None else f"{live['rss_mb']:.0f}",
                    "yes" if run.cancel_requested else "",
                ]
            )  # fmt: skip
        if not rows:
            self.stdout.write("No pipeline is running.")
            return
        headers = ["id", "pipeline", "step", "rows done", "rows/s", "elapsed s", "MB", "cancel asked"]
        self.stdout.write(text_table(headers, rows))
