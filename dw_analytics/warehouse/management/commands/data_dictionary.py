"""``manage.py data_dictionary``: write docs/data_dictionary.md and docs/data_dictionary.json."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dw_analytics.warehouse.dictionary import (
    data_dictionary,
    undocumented_columns,
    write_data_dictionary,
)


class Command(BaseCommand):
    help = (
        "Write the data dictionary (every warehouse table and Parquet dataset: columns, types, "
        "descriptions, keys, relationships) as Markdown and JSON."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--output-dir",
            type=Path,
            default=Path(settings.BASE_DIR) / "docs",
            help="folder for data_dictionary.md and data_dictionary.json (default: docs/)",
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="fail when a table or column has no description (writes nothing)",
        )

    def handle(self, *args, output_dir: Path, check: bool, **options) -> None:
        missing = undocumented_columns(data_dictionary())
        if check:
            if missing:
                raise CommandError("Undocumented (add a docstring or help_text): " + ", ".join(missing))
            self.stdout.write(self.style.SUCCESS("Every table and column has a description."))
            return
        markdown, as_json = write_data_dictionary(output_dir)
        if missing:
            self.stdout.write(self.style.WARNING("Undocumented (add help_text): " + ", ".join(missing)))
        self.stdout.write(self.style.SUCCESS(f"Wrote {markdown} and {as_json}."))
