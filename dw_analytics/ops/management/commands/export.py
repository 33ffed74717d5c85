"""``manage.py export SOURCE --format parquet|csv|xlsx --to PATH``: stream a source to a file."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dw_analytics.core.exceptions import DWError
from dw_analytics.jobs.export import FORMATS, export_source, registered_queries
from dw_analytics.ops.management.commands._util import current_user, parse_pairs, split_list


class Command(BaseCommand):
    help = (
        "Export a model (sales.Pedido), a warehouse table (fact_sales) or a registered query "
        "to Parquet, CSV or Excel, streaming in chunks, published atomically."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", nargs="?", help="model label, warehouse table or registered query")
        parser.add_argument("--format", choices=FORMATS, help="output format (default: from --to's suffix)")
        parser.add_argument("--to", dest="path", help="output file, relative to DW_OUTPUT_DIR")
        parser.add_argument(
            "--filter",
            action="append",
            default=[],
            metavar="FIELD=VALUE",
            help="Django lookup (criado_em__gte=2024-01-01), repeatable; SQL queries: bind parameter",
        )
        parser.add_argument("--fields", help="comma-separated columns (values() paths such as cliente__uf)")
        parser.add_argument("--chunksize", type=int, default=100_000, help="rows per chunk (memory bound)")
        parser.add_argument("--sep", default=",", help="CSV separator, e.g. ';'")
        parser.add_argument("--bom", action="store_true", help="CSV: UTF-8 with BOM (Excel)")
        parser.add_argument("--decimal-comma", action="store_true", help="CSV: decimals as 12,30")
        parser.add_argument(
            "--no-escape-formulas",
            action="store_true",
            help="CSV: do not prefix text starting with = + - @ with a quote",
        )
        parser.add_argument("--sheet", help="Excel sheet name")
        parser.add_argument("--list", action="store_true", help="list the registered queries and exit")

    # fmt: skip

    def handle(self, *args, **options) -> None:
        if options["list"]:
            for name, query in registered_queries().items():
                kind = "sql" if query.sql else "queryset"
                self.stdout.write(f"{name:<24} {kind:<9} {query.description}")
            return
        source, path = options["source"], options["path"]
        if not source or not path:
            raise CommandError("give a SOURCE and --to PATH (or --list)")
        fmt = options["format"] or path.rsplit(".", 1)[-1].lower()
        if fmt not in FORMATS:
            raise CommandError(f"cannot tell the format from {path!r}; give --format ({', '.join(FORMATS)})")
        try:
            result = export_source(
                source,
                fmt,
                path,
                filters=parse_pairs(options["filter"], "--filter"),
                fields=split_list(options["fields"]),
                chunksize=options["chunksize"],
                sep=options["sep"],
                bom=options["bom"],
                decimal_comma=options["decimal_comma"],
                escape_formulas=not options["no_escape_formulas"],
                sheet=options["sheet"],
                triggered_by=current_user(),
            )
        except DWError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"exported {result.n_rows:,} rows of {source} to {result.path} "
                f"in {result.duration_s:.1f} s (run {result.run_id})"
            )
        )
