"""Shared reporting for the benchmark scripts: one printed line and one JSON record per result.

Every benchmark script measures its own contenders (fresh subprocesses, alternating,
equal answers checked first; see /work/shared/BENCHMARKS.md) and then hands the
timings to :func:`report` (a comparison: ours against baselines) or
:func:`report_growth` (the same job at several sizes). Both print the human summary
line and, when the environment variable ``DW_BENCH_RESULTS`` names a file, append the
result to it as one JSON line. ``benchmarks/run_all.py`` sets that variable, collects
the records and renders ``benchmarks/RESULTS.md``; ``benchmarks/check.py`` compares
them with the goals.

Ratios follow one convention in the JSON: ``speedup`` = baseline median / our median
(> 1 means we are faster) and ``time_ratio`` = our median / baseline median. The
printed line shows whichever the script asks for (``ratio="speedup"`` or ``"time"``).

Example::

    from _harness import Baseline, report

    report(
        "csv",
        "csv_rollup",
        rows=10_000_000,
        ours_s=[3.1, 3.0, 3.3],
        peak_mb=180,
        baselines={"duckdb": Baseline([3.4, 3.5, 3.2], peak_mb=400, label="DuckDB")},
    )
    # csv_rollup 10,000,000 rows: 3.10 s (min 3.00, max 3.30) = 1.10x DuckDB (3.40 s, ...
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

RESULTS_ENV = "DW_BENCH_RESULTS"
SCRIPT_ENV = "DW_BENCH_SCRIPT"
MIN_TIMINGS = 3


@dataclass(frozen=True)
class Baseline:
    """One baseline's timings, as measured by the script in the same run.

    Args:
        times_s: Wall-clock seconds of each timed run (at least one; three for a report).
        peak_mb: Peak RSS (MB) of the process that ran only this baseline, if measured.
        label: How the line names the baseline (defaults to its key in ``baselines``).

    Example::

        Baseline([0.52, 0.50, 0.55], peak_mb=310, label="pd.DataFrame(list(qs.values()))")
    """

    times_s: Sequence[float]
    peak_mb: float | None = None
    label: str | None = None


def timing_summary(times_s: Sequence[float]) -> str:
    """Median with min and max, the way every benchmark line shows a timing.

    Example::

        >>> timing_summary([0.9, 0.81, 0.78])
        '0.81 s (min 0.78, max 0.90)'
    """
    return f"{statistics.median(times_s):.2f} s (min {min(times_s):.2f}, max {max(times_s):.2f})"


def timing_fields(times_s: Sequence[float]) -> dict[str, Any]:
    """The JSON fields of one contender's timings.

    Example::

        >>> timing_fields([3.0, 1.0, 2.0])["median_s"]
        2.0
    """
    times = [float(t) for t in times_s]
    if not times:
        raise ValueError("a contender needs at least one timing")
    return {
        "times_s": times,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
    }


def _as_baseline(value: Baseline | Sequence[float]) -> Baseline:
    return value if isinstance(value, Baseline) else Baseline(list(value))


def _script_name() -> str:
    return os.environ.get(SCRIPT_ENV) or Path(sys.argv[0]).stem


def _append(record: dict[str, Any]) -> None:
    """Append one JSON line to ``$DW_BENCH_RESULTS`` (one write: whole lines only)."""
    target = os.environ.get(RESULTS_ENV)
    if not target:
        return
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, default=str) + "\n")


def _ratio_text(speedup: float, style: str) -> str:
    return f"{speedup:.2f}x" if style == "speedup" else f"{1 / speedup:.2f}x"


def report(
    area: str,
    name: str,
    *,
    ours_s: Sequence[float],
    baselines: Mapping[str, Baseline | Sequence[float]] | None = None,
    peak_mb: float | None = None,
    rows: int | None = None,
    label: str | None = None,
    ours_label: str | None = None,
    ratio: Literal["speedup", "time"] = "speedup",
    note: str = "",
    extra: Mapping[str, Any] | None = None,
    echo: bool = True,
) -> dict[str, Any]:
    """Print one comparison line and record it (JSON line in ``$DW_BENCH_RESULTS``).

    Args:
        area: The table of RESULTS.md this belongs to (``"extract"``, ``"csv"``, ...).
        name: A stable name of the measurement (``"read_queryset sqlite"``); with
            ``rows`` it is the key ``check.py`` matches goals on.
        ours_s: Our timings in seconds (median of at least three is reported).
        baselines: Baseline key -> :class:`Baseline` (or a plain list of seconds),
            in the order the line should show them.
        peak_mb: Peak RSS (MB) of the process that ran only our job.
        rows: Rows processed (printed with thousands separators).
        label: Start of the printed line (default ``"{name} {rows:,} rows"``).
        ours_label: Name of our contender shown before our timing (optional).
        ratio: ``"speedup"`` prints baseline/ours ("18.3x bulk_create" = 18.3 times
            faster); ``"time"`` prints ours/baseline ("0.95x DuckDB" = 95% of its time).
        note: Text appended to the line as is (e.g. ``"; sums equal to the cent"``).
        extra: Anything else worth keeping in the JSON record (file sizes, per-step times).
        echo: Print the line (False when the script prints its own wording).

    Returns:
        The JSON record (also appended to ``$DW_BENCH_RESULTS`` when set).

    Example::

        report("load_models", "write_model sqlite append", rows=1_000_000,
               ours_s=[0.81, 0.78, 0.90], peak_mb=212,
               baselines={"bulk_create": [14.9, 14.6, 15.2]})
        # write_model sqlite append 1,000,000 rows: 0.81 s (min 0.78, max 0.90)
        #   = 18.40x bulk_create (14.90 s); peak 212 MB
    """
    ours = timing_fields(ours_s)
    record_baselines: dict[str, dict[str, Any]] = {}
    parts: list[str] = []
    for key, value in (baselines or {}).items():
        baseline = _as_baseline(value)
        fields = timing_fields(baseline.times_s)
        speedup = fields["median_s"] / ours["median_s"] if ours["median_s"] > 0 else float("inf")
        shown = baseline.label or key
        record_baselines[key] = {
            "label": shown,
            **fields,
            "peak_mb": baseline.peak_mb,
            "speedup": speedup,
            "time_ratio": 1 / speedup if speedup else float("inf"),
        }
        detail = timing_summary(baseline.times_s)
        if baseline.peak_mb is not None:
            detail += f", peak {baseline.peak_mb:.0f} MB"
        parts.append(f"{_ratio_text(speedup, ratio)} {shown} ({detail})")
    head = label or (f"{name} {rows:,} rows" if rows is not None else name)
    line = f"{head}: " + (f"{ours_label} " if ours_label else "") + timing_summary(ours["times_s"])
    if parts:
        line += " = " + ", ".join(parts)
    if peak_mb is not None:
        line += f"; peak {peak_mb:.0f} MB"
    line += note
    record = {
        "kind": "comparison",
        "area": area,
        "name": name,
        "rows": rows,
        "script": _script_name(),
        "ours": {"label": ours_label, **ours, "peak_mb": peak_mb},
        "baselines": record_baselines,
        "ratio_style": ratio,
        "line": line,
        "warnings": [] if len(ours["times_s"]) >= MIN_TIMINGS else [f"fewer than {MIN_TIMINGS} timings"],
    }
    return _record(record, extra, echo)


def report_growth(
    area: str,
    name: str,
    *,
    rows: Sequence[int],
    seconds: Sequence[float | None] | None = None,
    peak_mb: Sequence[float | None] | None = None,
    label: str | None = None,
    note: str = "",
    extra: Mapping[str, Any] | None = None,
    echo: bool = True,
) -> dict[str, Any]:
    """Print and record how one job's time and peak RSS grow with its input.

    Args:
        area: The RESULTS.md table it belongs to.
        name: Stable name of the job (``"nightly full sqlite"``).
        rows: The sizes measured, smallest first.
        seconds: Median seconds at each size (or None where not timed).
        peak_mb: Peak RSS (MB) at each size (or None where not measured).
        label: Start of the printed line (default ``"{name} growth"``).
        note: Text appended to the line as is.
        extra: More JSON fields.
        echo: Print the line.

    Returns:
        The JSON record, with ``rows_ratio``, ``time_ratio`` and ``rss_ratio`` of the
        largest size over the smallest (None when not measured).

    Example::

        report_growth("nightly", "nightly full sqlite", rows=[1_000_000, 10_000_000],
                      seconds=[60.0, 610.0], peak_mb=[300, 380])
        # nightly full sqlite growth 1,000,000 -> 10,000,000 rows (10x): time 10.17x,
        #   peak RSS 1.27x
    """
    sizes = [int(n) for n in rows]
    times = list(seconds) if seconds is not None else [None] * len(sizes)
    peaks = list(peak_mb) if peak_mb is not None else [None] * len(sizes)
    if not (len(sizes) == len(times) == len(peaks)) or len(sizes) < 1:
        raise ValueError("rows, seconds and peak_mb must have the same, non-zero length")

    def growth(values: list[float | None]) -> float | None:
        first, last = values[0], values[-1]
        return last / first if first and last is not None else None

    rows_ratio = sizes[-1] / sizes[0]
    time_ratio, rss_ratio = growth(times), growth(peaks)
    parts = []
    if time_ratio is not None:
        parts.append(f"time {time_ratio:.2f}x")
    if rss_ratio is not None:
        parts.append(f"peak RSS {rss_ratio:.2f}x")
    points = ", ".join(
        f"{n:,}: " + " / ".join(x for x in (f"{t:.2f} s" if t is not None else "", f"{p:.0f} MB" if p else "") if x)
        for n, t, p in zip(sizes, times, peaks, strict=True)
    )
    head = label or f"{name} growth"
    line = f"{head} {sizes[0]:,} -> {sizes[-1]:,} rows ({rows_ratio:.0f}x): {', '.join(parts)} [{points}]{note}"
    record = {
        "kind": "growth",
        "area": area,
        "name": name,
        "script": _script_name(),
        "points": [{"rows": n, "seconds": t, "peak_mb": p} for n, t, p in zip(sizes, times, peaks, strict=True)],
        "rows_ratio": rows_ratio,
        "time_ratio": time_ratio,
        "rss_ratio": rss_ratio,
        "line": line,
    }
    return _record(record, extra, echo)


def _record(record: dict[str, Any], extra: Mapping[str, Any] | None, echo: bool) -> dict[str, Any]:
    """Complete a record (extra fields, source, time), print its line and append it to the results file."""
    record.update(
        extra=dict(extra or {}),
        source="harness",
        recorded_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    if echo:
        print(record["line"], flush=True)
    _append(record)
    return record


def read_results(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All records of a results file (JSON lines; a torn last line is ignored).

    Example::

        records = read_results("benchmarks/RESULTS.jsonl")
    """
    records = []
    for text in Path(path).read_text(encoding="utf-8").splitlines():
        if text.strip():
            try:
                records.append(json.loads(text))
            except json.JSONDecodeError:
                continue
    return records
