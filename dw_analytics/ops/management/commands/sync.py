"""``manage.py sync --source URL --table NAME|--query SQL --to app.Model --key FIELD``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dw_analytics.core.exceptions import DWError
from dw_analytics.jobs.sync import MODES, sync_source
from dw_analytics.ops.management.commands._util import current_user, parse_pairs, split_list


class Command(BaseCommand):
    help = (
        "Copy a table or query from any SQLAlchemy database (PostgreSQL, MariaDB/MySQL, SQLite) "
        "into a Django model in chunks, in one transaction; incremental with --incremental-column."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--source", required=True, help="SQLAlchemy URL, e.g. mysql+pymysql://root@127.0.0.1:3306/test"
        )
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument("--table", help="source table (schema.table allowed)")
        what.add_argument("--query", help="source SELECT")
        parser.add_argument("--to", required=True, help="target model, e.g. sales.Cliente")
        parser.add_argument("--key", help="target key field(s), comma-separated (required for upsert)")
        parser.add_argument("--mode", choices=MODES, default="upsert")
        parser.add_argument("--incremental-column", help="read only rows at/after the stored watermark of this column")
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="SRC=DST",
            help="rename a source column (SRC= drops it), repeatable",
        )
        parser.add_argument("--chunksize", type=int, default=50_000)
        parser.add_argument("--watermark-name", help="override the watermark's name")

    # fmt: skip

    def handle(self, *args, **options) -> None:
        try:
            result = sync_source(
                options["source"],
                to=options["to"],
                key=split_list(options["key"]),
                table=options["table"],
                query=options["query"],
                mode=options["mode"],
                incremental_column=options["incremental_column"],
                mapping=parse_pairs(options["map"], "--map"),
                chunksize=options["chunksize"],
                watermark_name=options["watermark_name"],
                triggered_by=current_user(),
            )
        except DWError as exc:
            raise CommandError(str(exc)) from None
        watermark = f", watermark now {result.watermark}" if result.watermark else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"synced {result.n_read:,} rows into {options['to']}: {result.n_inserted:,} inserted, "
                f"{result.n_updated:,} updated, {result.n_deleted:,} deleted in {result.duration_s:.1f} s "
                f"(run {result.run_id}){watermark}"
            )
        )
