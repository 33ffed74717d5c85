"""Compare the last benchmark run with the goals of the issues; exit 1 naming each shortfall.

Reads the JSON results written by ``make bench`` (``benchmarks/RESULTS.jsonl``) and checks
every goal of :data:`GOALS` against the ratio measured in that run. A goal stated for a
size (1,000,000 rows, 10,000,000 rows) is only met by a measurement at that size; a goal
with no size must hold at every size measured. A goal with no measurement counts as not
met (``--allow-missing`` lists it without failing); ``--any-size`` checks whatever sizes
the run has (useful on a ``make bench-quick`` run, not a claim).

Usage::

    python benchmarks/check.py                        # benchmarks/RESULTS.jsonl
    python benchmarks/check.py /tmp/dw_bench_quick/RESULTS.jsonl --any-size
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import read_results  # noqa: E402

DEFAULT_RESULTS = Path(__file__).resolve().parent / "RESULTS.jsonl"
M = 1_000_000


@dataclass(frozen=True)
class Goal:
    """One performance claim of an issue, as a bound on one measured figure.

    Attributes:
        claim: The claim in words (printed when it falls short).
        kind: ``"comparison"`` (a ``report`` record) or ``"growth"`` (a ``report_growth`` one).
        name: The record's ``name`` (e.g. ``"read_queryset sqlite"``).
        rows: The size the claim is about (a comparison), ``(smallest, largest)`` (a growth),
            or None: every size measured.
        metric: ``speedup:<baseline>`` (baseline time / ours), ``time_ratio:<baseline>``
            (ours / baseline), ``peak_mb`` (ours), ``extra:<field>`` (a number or flag the
            script recorded), ``time_growth_per_rows`` (time growth / rows growth) or
            ``rss_ratio`` (peak RSS growth).
        op: ``">="`` or ``"<="``.
        limit: The bound.
    """

    claim: str
    kind: Literal["comparison", "growth"]
    name: str
    rows: int | tuple[int, int] | None
    metric: str
    op: Literal[">=", "<="]
    limit: float


# The goals stated in the issues, in one place.
GOALS: list[Goal] = [
    *(
        goal
        for db, db_label in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL"))
        for goal in (
            Goal(
                f"read_queryset >= 0.9x raw cursor.fetchall()->DataFrame ({db_label}, 1M rows)",
                "comparison",
                f"read_queryset {db}",
                M,
                "speedup:raw_fetchall",
                ">=",
                0.9,
            ),
            Goal(
                f"read_queryset >= 4x pd.DataFrame(list(qs.values())) ({db_label}, 1M rows)",
                "comparison",
                f"read_queryset {db}",
                M,
                "speedup:qs_values",
                ">=",
                4.0,
            ),
        )
    ),
    Goal("CSV 10M rows read+rollup time <= DuckDB's", "comparison", "csv_rollup", 10 * M, "speedup:duckdb", ">=", 1.0),
    Goal("CSV 10M rows read+rollup peak RSS <= 256 MB", "comparison", "csv_rollup", 10 * M, "peak_mb", "<=", 256),
    Goal("CSV 10M rows: sums equal to DuckDB's", "comparison", "csv_rollup", 10 * M, "extra:sums_equal", ">=", 1),
    *(
        Goal(
            f"star schema build <= 1.5x DuckDB's time ({rows // M}M orders)",
            "comparison",
            "star_schema",
            rows,
            "time_ratio:duckdb",
            "<=",
            1.5,
        )
        for rows in (M, 10 * M)
    ),
    Goal(
        "write_model SQLite >= 15x bulk_create(batch_size=1000) (1M rows)",
        "comparison",
        "write_model sqlite append",
        M,
        "speedup:bulk_create",
        ">=",
        15.0,
    ),
    Goal(
        "write_model SQLite >= 0.8x raw executemany (1M rows)",
        "comparison",
        "write_model sqlite append",
        M,
        "speedup:executemany",
        ">=",
        0.8,
    ),
    Goal(
        "write_model PostgreSQL >= 10x bulk_create(batch_size=1000) (1M rows)",
        "comparison",
        "write_model postgresql append",
        M,
        "speedup:bulk_create",
        ">=",
        10.0,
    ),
    *(
        Goal(
            f"upsert 1M rows half conflicting >= 5x bulk_create(update_conflicts=True) ({label})",
            "comparison",
            f"write_model {db} upsert",
            M,
            "speedup:bulk_create",
            ">=",
            5.0,
        )
        for db, label in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL"))
    ),
    *(
        goal
        # benchmarks/nightly.py names its backends as its --backends option does
        for db, label in (("sqlite", "SQLite"), ("postgres", "PostgreSQL"))
        for goal in (
            Goal(
                f"nightly full refresh time 10M / 1M <= 11x ({label})",
                "growth",
                f"nightly full {db}",
                (M, 10 * M),
                "time_growth_per_rows",
                "<=",
                1.1,
            ),
            Goal(
                f"nightly peak RSS at 10M <= 1.5x that at 1M ({label})",
                "growth",
                f"nightly full {db}",
                (M, 10 * M),
                "rss_ratio",
                "<=",
                1.5,
            ),
            Goal(
                f"incremental night (+1% orders) <= 10% of the full refresh ({label})",
                "comparison",
                f"nightly incremental {db}",
                None,
                "time_ratio:full",
                "<=",
                0.10,
            ),
        )
    ),
    *(
        goal
        for operation, label in (("sales", "sales_by_category"), ("fact", "fact build + snapshot"))
        for goal in (
            Goal(
                f"dask {label}: per-worker peak RSS flat (<= 1.2x) as the data grows 4x",
                "growth",
                f"dask {operation} memory",
                None,
                "rss_ratio",
                "<=",
                1.2,
            ),
            Goal(
                f"dask {label}: time <= 1.2x the pandas engine's",
                "comparison",
                f"dask {operation}",
                None,
                "time_ratio:pandas",
                "<=",
                1.2,
            ),
        )
    ),
]


@dataclass(frozen=True)
class Outcome:
    """The verdict on one goal: ``met``, ``short`` or ``missing``, with the figures seen."""

    goal: Goal
    status: Literal["met", "short", "missing"]
    values: tuple[tuple[str, float], ...]  # (where measured, value)
    detail: str = ""


def _metric(record: dict[str, Any], metric: str) -> float | None:
    if metric == "peak_mb":
        return record["ours"].get("peak_mb")
    if metric == "rss_ratio":
        return record.get("rss_ratio")
    if metric == "time_growth_per_rows":
        ratio = record.get("time_ratio")
        return ratio / record["rows_ratio"] if ratio is not None else None
    kind, _, key = metric.partition(":")
    if kind in ("speedup", "time_ratio"):
        baseline = record.get("baselines", {}).get(key)
        return baseline.get(kind) if baseline else None
    if kind == "extra":
        value = record.get("extra", {}).get(key)
        return float(value) if value is not None else None
    raise ValueError(f"unknown metric {metric!r}")


def _where(record: dict[str, Any]) -> str:
    if record["kind"] == "growth":
        points = record["points"]
        return f"{points[0]['rows']:,} -> {points[-1]['rows']:,} rows"
    return f"{record['rows']:,} rows" if record.get("rows") is not None else "-"


def _matches_size(goal: Goal, record: dict[str, Any]) -> bool:
    if goal.rows is None:
        return True
    if goal.kind == "growth":
        points = record["points"]
        return (points[0]["rows"], points[-1]["rows"]) == tuple(goal.rows)
    return record.get("rows") == goal.rows


def evaluate(records: Iterable[dict[str, Any]], *, any_size: bool = False) -> list[Outcome]:
    """Check every goal against the records of one run.

    Args:
        records: The JSON records of a run (``_harness.read_results``).
        any_size: Accept measurements at any size (a quick run), not only the goal's.

    Returns:
        One :class:`Outcome` per goal, in the order of :data:`GOALS`.

    Example::

        outcomes = evaluate(read_results("benchmarks/RESULTS.jsonl"))
        short = [o for o in outcomes if o.status != "met"]
    """
    records = [r for r in records if r.get("kind") in ("comparison", "growth")]
    outcomes = []
    for goal in GOALS:
        candidates = [r for r in records if r["kind"] == goal.kind and r["name"] == goal.name]
        sized = candidates if any_size else [r for r in candidates if _matches_size(goal, r)]
        values = tuple((_where(r), value) for r in sized if (value := _metric(r, goal.metric)) is not None)
        if not values:
            seen = ", ".join(sorted({_where(r) for r in candidates}))
            detail = f"measured only at {seen}" if seen else "no measurement in this run"
            outcomes.append(Outcome(goal, "missing", (), detail))
            continue
        ok = all(v >= goal.limit if goal.op == ">=" else v <= goal.limit for _, v in values)
        outcomes.append(Outcome(goal, "met" if ok else "short", values))
    return outcomes


def format_value(goal: Goal, value: float) -> str:
    """A measured figure in the unit of its goal (``"18.30x"``, ``"212 MB"``, ``"yes"``)."""
    if goal.metric == "peak_mb":
        return f"{value:.0f} MB"
    if goal.metric.startswith("extra:") and goal.limit == 1:
        return "yes" if value else "no"
    return f"{value:.2f}x"


def describe(outcome: Outcome) -> str:
    """One line per goal: status, claim, figures measured."""
    goal = outcome.goal
    bound = (
        "yes" if goal.metric.startswith("extra:") and goal.limit == 1 else f"{goal.op} {format_value(goal, goal.limit)}"
    )
    if outcome.status == "missing":
        return f"MISSING  {goal.claim}: {outcome.detail}"
    figures = "; ".join(f"{format_value(goal, v)} at {where}" for where, v in outcome.values)
    label = "met     " if outcome.status == "met" else "SHORT   "
    return f"{label} {goal.claim}: {figures} (goal: {metric_text(goal)} {bound})"


def metric_text(goal: Goal) -> str:
    """The measured figure of a goal in words (``"speedup vs duckdb"``)."""
    kind, _, key = goal.metric.partition(":")
    return {
        "speedup": f"speedup vs {key}",
        "time_ratio": f"time / {key} time",
        "peak_mb": "peak RSS",
        "extra": key,
        "time_growth_per_rows": "time growth / rows growth",
        "rss_ratio": "peak RSS growth",
    }[kind]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default=str(DEFAULT_RESULTS), help="JSON lines of a run")
    parser.add_argument("--any-size", action="store_true", help="accept measurements at any size")
    parser.add_argument("--allow-missing", action="store_true", help="do not fail on goals not measured")
    args = parser.parse_args(argv)
    path = Path(args.results)
    if not path.exists():
        print(f"{path} does not exist: run `make bench` first", file=sys.stderr)
        return 2
    records = read_results(path)
    run = next((r for r in records if r.get("kind") == "run"), {})
    if run:
        print(f"# {run.get('mode', '?')} run of {run.get('started_at', '?')} ({path})")
    if run.get("mode") == "quick" and not args.any_size:
        print("# a quick run measures 100,000 rows: its sizes do not match the goals (try --any-size)")
    outcomes = evaluate(records, any_size=args.any_size)
    for outcome in outcomes:
        print(describe(outcome))
    short = [o for o in outcomes if o.status == "short"]
    missing = [o for o in outcomes if o.status == "missing"]
    print(f"# {len(outcomes) - len(short) - len(missing)} met, {len(short)} short, {len(missing)} not measured")
    if short or (missing and not args.allow_missing):
        for outcome in short:
            print(f"short of goal: {outcome.goal.claim}", file=sys.stderr)
        for outcome in [] if args.allow_missing else missing:
            print(f"not measured: {outcome.goal.claim}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
