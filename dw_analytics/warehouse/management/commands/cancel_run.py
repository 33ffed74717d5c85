"""``manage.py cancel_run ID``: stop a running pipeline at its next chunk boundary."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dw_analytics.core.status import request_cancel
from dw_analytics.warehouse.models import PipelineRun


class Command(BaseCommand):
    help = "Ask a running pipeline to stop; it rolls back everything it wrote and is recorded as cancelled."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("run_id", type=int, help="the run's id (see pipeline_status)")

    def handle(self, *args, run_id: int, **options) -> None:
        run = PipelineRun.objects.filter(pk=run_id).first()
        if run is None:
            raise CommandError(f"no run with id {run_id}")
        if run.status != PipelineRun.Status.RUNNING:
            raise CommandError(f"run {run_id} ({run.pipeline}) is not running: it {run.status}")
        request_cancel(run)
        self.stdout.write(
            self.style.SUCCESS(f"Cancel requested for run {run_id} ({run.pipeline}); it stops at its next chunk.")
        )
