"""``manage.py run_pipeline NAME``: run one registered pipeline and report its log."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dw_analytics.core.locks import EXIT_LOCKED
from dw_analytics.warehouse.cli import add_run_options, run_for_command
from dw_analytics.warehouse.reporting import format_run_log


def parse_params(pairs: list[str]) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a pair without ``=`` is a user error."""
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"--param expects KEY=VALUE, got {pair!r}")
        params[key] = value
    return params


class Command(BaseCommand):
    help = f"Run a registered pipeline. Exit codes: 0 done, 1 failed, {EXIT_LOCKED} already running."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="pipeline name (see list_pipelines)")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the run log as JSON")
        parser.add_argument(
            "--param", action="append", default=[], metavar="KEY=VALUE", help="pipeline parameter (repeatable)"
        )
        parser.add_argument(
            "--engine",
            choices=["pandas", "dask"],
            help="engine of an engine-aware pipeline (default: settings.DW_ENGINE)",
        )
        parser.add_argument(
            "--scheduler",
            metavar="tcp://HOST:8786",
            help="Dask scheduler for --engine dask (default: settings.DW_DASK_SCHEDULER; none: a LocalCluster here)",
        )
        add_run_options(parser)

    def handle(
        self, *args, name: str, as_json: bool, param: list[str], engine: str | None, scheduler: str | None, **options
    ) -> None:
        if scheduler and engine == "pandas":
            raise CommandError("--scheduler is a Dask scheduler address: use it with --engine dask")
        params = parse_params(param) | {k: v for k, v in (("engine", engine), ("scheduler", scheduler)) if v}
        log = run_for_command(name, params, options=options, stderr=self.stderr._out, triggered_by="run_pipeline")
        self.stdout.write(json.dumps(log.as_dict(), indent=2) if as_json else format_run_log(log))
        if not log.succeeded:
            raise CommandError(f"pipeline {name!r} failed (run {log.run_id}): {log.error}")
