"""``manage.py consolidate 'data/in/*.csv' --to app.Model [--mapping mapping.toml]``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dw_analytics.core.exceptions import DWError
from dw_analytics.jobs.consolidate import consolidate
from dw_analytics.ops.management.commands._util import current_user


class Command(BaseCommand):
    help = (
        "Load many CSV files of the same kind (branch exports; any encoding and separator) into "
        "a model through a TOML column mapping; each file once (by SHA-256), bad rows quarantined."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("pattern", help="glob of the files, quoted: 'data/in/*.csv'")
        parser.add_argument("--to", required=True, help="target model, e.g. ops.VendaFilial")
        parser.add_argument("--mapping", help="TOML mapping file (see docs/operations-jobs.md)")
        parser.add_argument("--chunksize", type=int, default=100_000)

    def handle(self, *args, **options) -> None:
        try:
            report = consolidate(
                options["pattern"],
                options["to"],
                mapping=options["mapping"],
                chunksize=options["chunksize"],
                triggered_by=current_user(),
            )
        except DWError as exc:
            raise CommandError(str(exc)) from None
        for outcome in report.files:
            line = f"{outcome.status:<8} {outcome.path}"
            if outcome.status == "loaded":
                line += f": {outcome.n_rows:,} rows, {outcome.n_errors:,} quarantined (run {outcome.run_id})"
            elif outcome.status == "failed":
                line += f": {outcome.error}"
            style = {"loaded": self.style.SUCCESS, "failed": self.style.ERROR}.get(outcome.status, str)
            self.stdout.write(style(line))
        self.stdout.write(report.summary())
        if report.count("failed"):
            raise CommandError(f"{report.count('failed')} file(s) failed; the others were loaded")
