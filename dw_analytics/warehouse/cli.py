"""What the run commands share: options for progress and logs, and exit codes."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from dw_analytics.core.api import run
from dw_analytics.core.exceptions import ConfigurationError
from dw_analytics.core.locks import EXIT_LOCKED, PipelineLocked
from dw_analytics.core.observe import configure_run_logging, logger, progress_enabled
from dw_analytics.core.registry import UnknownPipeline
from dw_analytics.core.runlog import RunLog


def add_run_options(parser: CommandParser) -> None:
    """``--quiet`` and ``--log-format`` for commands that run a pipeline."""
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--log-format", choices=["text", "json"], help="one log line per step on stderr, as text or JSON"
    )


def run_for_command(
    name: str, params: dict[str, Any], *, options: dict[str, Any], stderr: Any, triggered_by: str
) -> RunLog:
    """Run pipeline ``name`` for a command; user mistakes and a held lock become ``CommandError``.

    A held lock exits with :data:`~dw_analytics.core.locks.EXIT_LOCKED` (3); a
    failed run is returned (the command reports it and exits 1).
    """
    handler = configure_run_logging(options["log_format"], stderr) if options.get("log_format") else None
    token = progress_enabled.set(False) if options.get("quiet") else None
    try:
        return run(name, raise_errors=False, triggered_by=triggered_by, **params)
    except (UnknownPipeline, ConfigurationError) as exc:
        raise CommandError(str(exc)) from None
    except PipelineLocked as exc:
        raise CommandError(str(exc), returncode=EXIT_LOCKED) from None
    finally:
        if token is not None:
            progress_enabled.reset(token)
        if handler is not None:
            logger.removeHandler(handler)
