"""``manage.py check_freshness``: are the monitored pipelines' outputs fresh? (for cron)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from dw_analytics.warehouse.freshness import all_fresh, format_age, pipelines_freshness
from dw_analytics.warehouse.reporting import text_table

#: exit status when at least one monitored pipeline is stale (1 stays "the command failed")
STALE_EXIT_CODE = 2


class Command(BaseCommand):
    help = (
        "Print the freshness of every pipeline that declares `freshness`; exit 0 when all are "
        f"fresh, {STALE_EXIT_CODE} when any is stale (never ran successfully, or too long ago)."
    )

    def handle(self, *args, **options) -> None:
        verdicts = pipelines_freshness()
        if not verdicts:
            self.stdout.write("No pipeline declares a freshness limit; nothing to check.")
            return
        rows = [
            [
                v.pipeline,
                "fresh" if v.is_fresh else "STALE",
                timezone.localtime(v.last_success_at).strftime("%Y-%m-%d %H:%M:%S") if v.last_success_at else "never",
                format_age(v.age),
                format_age(v.max_age),
            ]
            for v in verdicts
        ]
        self.stdout.write(text_table(["pipeline", "state", "last success", "age", "limit"], rows))
        if all_fresh(verdicts):
            self.stdout.write(self.style.SUCCESS(f"All {len(verdicts)} monitored pipeline(s) are fresh."))
            return
        stale = ", ".join(v.pipeline for v in verdicts if not v.is_fresh)
        raise CommandError(f"stale pipeline(s): {stale}", returncode=STALE_EXIT_CODE)
