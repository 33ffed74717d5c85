"""``manage.py pipeline_history``: the most recent runs."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from dw_analytics.warehouse.models import PipelineRun
from dw_analytics.warehouse.reporting import text_table


class Command(BaseCommand):
    help = "Show recent pipeline runs, newest first."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pipeline", help="only runs of this pipeline")
        parser.add_argument("--limit", type=int, default=20, help="how many runs (default 20)")

    def handle(self, *args, pipeline: str | None, limit: int, **options) -> None:
        if limit < 1:
            raise CommandError("--limit must be >= 1")
        runs = PipelineRun.objects.all()
        if pipeline:
            runs = runs.filter(pipeline=pipeline)
        rows = [
            [
                r.pk, r.pipeline, r.status,
                timezone.localtime(r.started_at).strftime("%Y-%m-%d %H:%M:%S"),
                "" if r.duration_s is None else f"{r.duration_s:.2f}",
                f"{r.n_processed:,}", f"{r.n_errors:,}",
                "" if r.peak_rss_mb is None else f"{r.peak_rss_mb:.0f}",
                r.error[:60],
            ]
            for r in runs[:limit]
        ]  # fmt: skip
        if not rows:
            self.stdout.write("No runs recorded yet.")
            return
        headers = ["id", "pipeline", "status", "started", "seconds", "processed", "errors", "peak MB", "error"]
        self.stdout.write(text_table(headers, rows))
