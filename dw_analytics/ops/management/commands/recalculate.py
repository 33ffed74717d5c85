"""``manage.py recalculate PIPELINE --from DATE --to DATE``: rebuild a range, report the changes."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dw_analytics.core.exceptions import DWError
from dw_analytics.jobs.recalculate import recalculate
from dw_analytics.ops.management.commands._util import current_user


class Command(BaseCommand):
    help = (
        "Recompute the derived tables of a date range (star_schema / nightly backfill) and report "
        "rows inserted, deleted, changed and unchanged per table."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("pipeline", help="pipeline with a date range, e.g. star_schema")
        parser.add_argument("--from", dest="date_from", required=True, help="first date, YYYY-MM-DD")
        parser.add_argument("--to", dest="date_to", required=True, help="last date, YYYY-MM-DD")

    def handle(self, *args, **options) -> None:
        try:
            report = recalculate(
                options["pipeline"], options["date_from"], options["date_to"], triggered_by=current_user()
            )
        except (DWError, KeyError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"{report.pipeline} {report.date_from} .. {report.date_to}: run {report.run_id}, "
            f"{report.n_processed:,} rows processed in {report.duration_s:.1f} s"
        )
        self.stdout.write(
            f"{'table':<26}{'before':>10}{'after':>10}{'inserted':>10}{'deleted':>10}{'changed':>10}{'same':>10}"
        )
        for t in report.tables:
            self.stdout.write(
                f"{t.table:<26}{t.n_before:>10,}{t.n_after:>10,}{t.n_inserted:>10,}{t.n_deleted:>10,}"
                f"{t.n_changed:>10,}{t.n_unchanged:>10,}"
            )
        self.stdout.write(self.style.SUCCESS("done"))
