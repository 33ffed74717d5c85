"""``manage.py run_pipeline NAME``: run one registered pipeline and report its log."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dw_analytics.core.api import run
from dw_analytics.core.exceptions import ConfigurationError
from dw_analytics.core.registry import UnknownPipeline
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
    help = "Run a registered pipeline. Exits non-zero when the run fails."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="pipeline name (see list_pipelines)")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the run log as JSON")
        parser.add_argument(
            "--param", action="append", default=[], metavar="KEY=VALUE", help="pipeline parameter (repeatable)"
        )

    def handle(self, *args, name: str, as_json: bool, param: list[str], **options) -> None:
        params = parse_params(param)
        try:
            log = run(name, raise_errors=False, triggered_by="run_pipeline", **params)
        except UnknownPipeline as exc:
            raise CommandError(str(exc)) from None
        except ConfigurationError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(log.as_dict(), indent=2) if as_json else format_run_log(log))
        if not log.succeeded:
            raise CommandError(f"pipeline {name!r} failed (run {log.run_id}): {log.error}")
