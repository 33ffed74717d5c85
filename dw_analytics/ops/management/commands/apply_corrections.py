"""``manage.py apply_corrections FILE --model app.Model --key FIELD [--dry-run]``; ``--revert ID``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dw_analytics.core.exceptions import DWError
from dw_analytics.jobs.corrections import (
    CorrectionReport,
    apply_corrections,
    key_text,
    revert_corrections,
)
from dw_analytics.ops.management.commands._util import current_user, split_list

#: diff and rejection lines printed before "... and N more"
SHOW_LINES = 50


class Command(BaseCommand):
    help = (
        "Validate a CSV / Excel / Parquet file of corrected values against a model and upsert it "
        "in one transaction (audited, revertible). --dry-run reports without writing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", help="corrections file (.csv, .xlsx, .parquet)")
        parser.add_argument("--model", help="target model, e.g. sales.Pedido")
        parser.add_argument("--key", help="key field(s), comma-separated")
        parser.add_argument("--dry-run", action="store_true", help="report only, write nothing")
        parser.add_argument("--strict", action="store_true", help="write nothing if any row is rejected")
        parser.add_argument("--sep", default=",", help="CSV separator")
        parser.add_argument("--decimal", default=".", help="CSV decimal mark, e.g. ','")
        parser.add_argument("--encoding", default="utf-8", help="CSV encoding (or auto)")
        parser.add_argument("--sheet", help="Excel sheet")
        parser.add_argument("--revert", type=int, metavar="ID", help="revert applied correction ID")
        parser.add_argument("--force", action="store_true", help="with --revert: even if rows changed since")
        parser.add_argument("--all", action="store_true", help="print every diff and rejection line")

    def handle(self, *args, **options) -> None:
        try:
            if options["revert"] is not None:
                result = revert_corrections(options["revert"], force=options["force"], triggered_by=current_user())
                self.stdout.write(
                    self.style.SUCCESS(
                        f"correction {options['revert']} reverted: {result['restored']} rows restored, "
                        f"{result['deleted']} inserted rows deleted"
                    )
                )
                return
            if not options["file"] or not options["model"] or not options["key"]:
                raise CommandError("give FILE, --model and --key (or --revert ID)")
            report = apply_corrections(
                options["file"],
                options["model"],
                split_list(options["key"]),
                dry_run=options["dry_run"],
                strict=options["strict"],
                sep=options["sep"],
                decimal=options["decimal"],
                encoding=options["encoding"],
                sheet=options["sheet"],
                triggered_by=current_user(),
            )
        except DWError as exc:
            raise CommandError(str(exc)) from None
        self._print(report, limit=None if options["all"] else SHOW_LINES)
        if options["dry_run"]:
            self.stdout.write(self.style.WARNING("dry run: nothing was written"))
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"applied as correction {report.correction_id} (run {report.run_id}); "
                    f"revert with: manage.py apply_corrections --revert {report.correction_id}"
                )
            )

    def _print(self, report: CorrectionReport, limit: int | None) -> None:
        self.stdout.write(
            f"{report.file} -> {report.model} (key {', '.join(report.keys)}), sha256 {report.sha256[:16]}..."
        )
        self.stdout.write(report.summary())
        if len(report.updated):
            self.stdout.write("updated:")
            shown = report.updated if limit is None else report.updated.head(limit)
            keys = key_text(shown[report.keys])
            for key, column, before, after in zip(keys, shown["column"], shown["before"], shown["after"], strict=True):
                self.stdout.write(f"  {key}  {column}: {before} -> {after}")
            self._more(len(report.updated), len(shown))
        if len(report.inserted):
            self.stdout.write(f"inserted: {report.n_inserted} rows")
        if len(report.rejected):
            self.stdout.write(self.style.ERROR("rejected:"))
            shown = report.rejected if limit is None else report.rejected.head(limit)
            for row in shown.itertuples(index=False):
                self.stdout.write(f"  line {row.line} key {row.key!s} {row.column}={row.value!r}: {row.reason}")
            self._more(len(report.rejected), len(shown))

    def _more(self, total: int, shown: int) -> None:
        if total > shown:
            self.stdout.write(f"  ... and {total - shown} more (--all shows every line)")
