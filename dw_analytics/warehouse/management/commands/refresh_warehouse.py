"""``manage.py refresh_warehouse``: the nightly job (for cron or by hand)."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dw_analytics.core.locks import EXIT_LOCKED
from dw_analytics.warehouse.cli import add_run_options, run_for_command
from dw_analytics.warehouse.reporting import format_run_log, text_table


class Command(BaseCommand):
    help = (
        "Run the nightly refresh: etl, the star schema and aggregates (incremental by default), "
        "the Parquet snapshot for Power BI and the Excel report. Exit codes: 0 done, 1 failed, "
        f"{EXIT_LOCKED} already running."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--full-refresh", action="store_true", help="rebuild the fact from every order")
        mode.add_argument("--backfill", nargs=2, metavar=("FROM", "TO"), type=dt.date.fromisoformat,
                          help="rebuild the fact rows of orders placed FROM..TO (YYYY-MM-DD, inclusive)")  # fmt: skip
        add_run_options(parser)

    def handle(self, *args, full_refresh: bool, backfill: list[dt.date] | None, **options) -> None:
        params: dict[str, object] = {}
        if full_refresh:
            params["mode"] = "full"
        if backfill:
            if backfill[0] > backfill[1]:
                raise CommandError("--backfill FROM must not be after TO")
            params.update(mode="backfill", date_from=backfill[0], date_to=backfill[1])
        log = run_for_command(
            "nightly", params, options=options, stderr=self.stderr._out, triggered_by="refresh_warehouse"
        )
        self.stdout.write(format_run_log(log))
        if not log.succeeded:
            raise CommandError(f"nightly refresh failed (run {log.run_id}): {log.error}")
        self.stdout.write("")
        self.stdout.write(text_table(["output", "path"], sorted(log.result["outputs"].items())))
        self.stdout.write(self.style.SUCCESS(f"Nightly refresh succeeded in {log.duration_s:.1f} s."))
