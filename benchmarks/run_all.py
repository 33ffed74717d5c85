"""Run every benchmark script, collect their results and write RESULTS.md and the scale curve.

Each script runs in its own process with ``DW_BENCH_RESULTS`` pointing at one JSON-lines
file, so whatever it reports through ``benchmarks/_harness.py`` lands there. A script that
records nothing there (it only prints) is still covered: its printed result lines are kept
verbatim (``records_from_output``). Then:

* ``RESULTS.md``: the machine, the goals (``check.py``), one table per area (our figure,
  each baseline's figure from the same run, the ratio, peak RSS), growth tables, the scale
  curve and every script's output;
* ``scale_curve.png``: time and peak RSS of the nightly refresh and the CSV rollup against
  the number of rows;
* ``RESULTS.jsonl``: the raw records (``check.py`` reads them).

Usage::

    python benchmarks/run_all.py                      # full run (hours): make bench
    python benchmarks/run_all.py --quick --out-dir /tmp/q   # 100,000 rows: make bench-quick
    python benchmarks/run_all.py --only nightly,csv_rollup --scale-rows 100000,300000,1000000 \\
        --script-args "nightly=--backends sqlite" --out-dir /tmp/scale
    python benchmarks/run_all.py --render /tmp/q/RESULTS.jsonl --out-dir benchmarks
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shlex
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import check  # noqa: E402
from _harness import RESULTS_ENV, SCRIPT_ENV, read_results  # noqa: E402

PG_SERVER = os.environ.get("DW_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
DEFAULT_SCALE_ROWS = (1_000_000, 3_000_000, 10_000_000)
AREAS = {
    "extract": "Extract (read_queryset)",
    "csv": "CSV (read_csv_chunks + rollup)",
    "transforms": "Transforms (star schema)",
    "load_models": "Load models (write_model)",
    "load_parquet": "Load Parquet (write_parquet)",
    "load_excel": "Load Excel (write_excel)",
    "nightly": "Nightly refresh",
    "ondemand": "On-demand jobs",
    "dask": "Dask engine",
}


@dataclass(frozen=True)
class Script:
    """One benchmark script and how to run it.

    Attributes:
        name: File stem in ``benchmarks/``.
        full: Argument lists of the full run (one process each).
        quick: Argument lists of the quick run.
        scale: How ``--scale-rows`` turns into argument lists (None: not on the curve).
    """

    name: str
    full: list[list[str]]
    quick: list[list[str]] = field(default_factory=lambda: [["--quick"]])
    scale: Callable[[list[int]], list[list[str]]] | None = None


SCRIPTS: list[Script] = [
    Script("extract_queryset", [[]]),
    Script(
        "csv_rollup",
        [["--rows", str(n)] for n in DEFAULT_SCALE_ROWS],
        scale=lambda sizes: [["--rows", str(n)] for n in sizes],
    ),
    Script("star_schema", [[]]),
    Script("load_models", [[]]),
    Script("load_parquet", [[]]),
    Script("load_excel", [[]]),
    Script(
        "nightly",
        [["--rows", ",".join(map(str, DEFAULT_SCALE_ROWS))]],
        scale=lambda sizes: [["--rows", ",".join(map(str, sizes))]],
    ),
    Script("ondemand", [[]]),
    Script("dask_scale", [[]]),
]

NOT_BENCHMARKS = {"run_all", "check"}


def all_scripts() -> list[Script]:
    """SCRIPTS, then any other ``benchmarks/*.py`` (default size, ``--quick``) so none is forgotten."""
    known = {script.name for script in SCRIPTS} | NOT_BENCHMARKS
    others = [Script(path.stem, [[]]) for path in sorted(HERE.glob("*.py")) if path.stem not in known]
    return SCRIPTS + [script for script in others if not script.name.startswith("_")]


# -- printed lines of scripts that do not report through the harness --------------------------

AREA_OF_SCRIPT = {
    "extract_queryset": "extract",
    "csv_rollup": "csv",
    "star_schema": "transforms",
    "load_models": "load_models",
    "load_parquet": "load_parquet",
    "load_excel": "load_excel",
    "nightly": "nightly",
    "ondemand": "ondemand",
    "dask_scale": "dask",
}


def records_from_output(script: str, lines: Iterable[str]) -> list[dict]:
    """``line`` records of a script's printed result lines, kept verbatim for RESULTS.md.

    Example::

        records_from_output("soak", ["soak sqlite 20,000 orders: initial build 3.1 s, peak 273 MB"])
    """
    area = AREA_OF_SCRIPT.get(script, script)
    return [
        {"kind": "line", "area": area, "script": script, "line": line}
        for line in lines
        if not line.startswith(("#", " ")) and (" s (min " in line or " MB" in line)
    ]


# -- machine -------------------------------------------------------------------------------------


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_description() -> dict[str, str]:
    """CPU, cores, memory and the versions every figure depends on.

    Example::

        machine_description()["cores"]  # '2'
    """
    cpu = platform.processor() or platform.machine()
    memory = "?"
    try:
        info = Path("/proc/cpuinfo").read_text()
        cpu = next((line.split(":", 1)[1].strip() for line in info.splitlines() if "model name" in line), cpu)
        kib = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line)
        memory = f"{int(kib) / 2**20:.1f} GiB"
    except (OSError, StopIteration):
        pass
    try:
        import psycopg

        with psycopg.connect(PG_SERVER, connect_timeout=5) as connection:
            postgres = connection.execute("SHOW server_version").fetchone()[0]
    except Exception as error:  # any failure: the description says why instead of stopping the run
        postgres = f"unavailable ({type(error).__name__})"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "load average at start": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "os": platform.platform(),
        "python": platform.python_version(),
        "pandas": _version("pandas"),
        "pyarrow": _version("pyarrow"),
        "numpy": _version("numpy"),
        "django": _version("django"),
        "sqlite": sqlite3.sqlite_version,
        "postgresql server": postgres,
        "duckdb": _version("duckdb"),
        "dask": _version("dask"),
        "psycopg": _version("psycopg"),
    }


def _git_commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
    return (done.stdout.strip() or "?") + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


# -- running -------------------------------------------------------------------------------------


def run_script(
    script: str, args: list[str], results: Path, *, timeout_s: float | None, echo: Callable[[str], None]
) -> dict[str, Any]:
    """Run one script; stream its output; return its ``script`` record (records appended to ``results``)."""
    env = {**os.environ, RESULTS_ENV: str(results), SCRIPT_ENV: script, "PYTHONUNBUFFERED": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    command = [sys.executable, str(HERE / f"{script}.py"), *args]
    echo(f"$ {shlex.join(['python', f'benchmarks/{script}.py', *args])}")
    before = len(read_results(results)) if results.exists() else 0
    started = time.perf_counter()
    lines: list[str] = []
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as errors:
        # Its own process group: a timeout stops the script and every process it started.
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=errors, text=True, start_new_session=True
        )

        def stop() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        watchdog = threading.Timer(timeout_s, stop) if timeout_s else None
        if watchdog:
            watchdog.start()
        try:
            assert proc.stdout is not None
            for text in proc.stdout:
                lines.append(text.rstrip("\n"))
                echo(lines[-1])
            returncode = proc.wait()
        except KeyboardInterrupt:
            stop()
            raise
        finally:
            if watchdog:
                watchdog.cancel()
        timed_out = bool(watchdog) and time.perf_counter() - started >= timeout_s and returncode < 0
        errors.seek(0)
        stderr_tail = errors.read().splitlines()[-40:]
    if returncode != 0 and stderr_tail:
        print("\n".join(stderr_tail), file=sys.stderr, flush=True)
    seconds = time.perf_counter() - started
    new = read_results(results)[before:] if results.exists() else []
    reported = sum(1 for r in new if r.get("kind") in ("comparison", "growth"))
    if not reported:  # not through the harness: keep the printed lines
        with results.open("a", encoding="utf-8") as handle:
            for record in records_from_output(script, lines):
                record["args"] = args
                handle.write(json.dumps(record) + "\n")
    return {
        "kind": "script",
        "script": script,
        "args": args,
        "returncode": -1 if timed_out else returncode,
        "timed_out": timed_out,
        "seconds": seconds,
        "reported": reported,
        "stdout": lines,
        "stderr_tail": stderr_tail if returncode != 0 else [],
    }


def plan(mode: str, only: set[str] | None, scale_rows: list[int] | None, extra: dict[str, list[str]]) -> list:
    """(script, args) pairs of a run, in order."""
    steps = []
    for script in all_scripts():
        if only and script.name not in only:
            continue
        if scale_rows and script.scale:
            invocations = script.scale(scale_rows)
        else:
            invocations = script.quick if mode == "quick" else script.full
        steps.extend((script, [*args, *extra.get(script.name, [])]) for args in invocations)
    return steps


# -- rendering -----------------------------------------------------------------------------------


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} s"


def _mb(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} MB"


def _timing_cell(entry: dict[str, Any]) -> str:
    if entry.get("min_s") is None:
        return _s(entry.get("median_s"))
    return f"{entry['median_s']:.2f} s ({entry['min_s']:.2f}–{entry['max_s']:.2f})"


def _ratio_cell(baseline: dict[str, Any]) -> str:
    speedup = baseline.get("speedup")
    if not speedup:
        return "–"
    if round(speedup, 2) == 1 or round(1 / speedup, 2) == 1:
        return "1.00x (same)"
    return f"**{speedup:.2f}x faster**" if speedup >= 1 else f"{1 / speedup:.2f}x slower"


def _rows(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def _escape(text: str) -> str:
    return str(text).replace("|", "\\|")


def render_markdown(records: list[dict[str, Any]]) -> str:
    """RESULTS.md from the records of one run."""
    run = next((r for r in records if r.get("kind") == "run"), {})
    scripts = [r for r in records if r.get("kind") == "script"]
    mode = run.get("mode", "?")
    out = ["# Benchmark results", ""]
    started = run.get("started_at", "?")
    if mode == "quick":
        out += [
            f"> **Quick run** (`make bench-quick`: 100,000 rows per script) of {started}. These figures only show",
            "> that every script works; the claims are about 1M–10M rows: see a full `make bench` run.",
        ]
    elif mode == "full":
        out += [f"> Full run (`make bench`) of {started}."]
    else:
        out += [f"> Partial run of {started}: `{run.get('command', '?')}`."]
    if run.get("note"):
        out += [">", f"> {run['note']}"]
    total = sum(s.get("seconds", 0) for s in scripts)
    out += [
        ">",
        f"> Commit {run.get('commit', '?')}; {len(scripts)} script runs, {total / 60:.1f} min in all. "
        "Every ratio compares figures measured in the same run on the same data "
        "(median of 3 timings, min–max in brackets; peak RSS of a process that did only that job).",
        "",
        "Regenerate: `make bench` (full, hours) or `make bench-quick`; check the goals: `make bench-check`.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
    ]
    out += [f"| {key} | {_escape(value)} |" for key, value in run.get("machine", {}).items()]

    failed = [s for s in scripts if s["returncode"] != 0]
    if failed:
        out += ["", "## Failures", ""]
        for s in failed:
            why = "timed out" if s.get("timed_out") else f"exit code {s['returncode']}"
            out.append(f"- `benchmarks/{s['script']}.py {' '.join(s['args'])}`: {why}")
            tail = [line for line in s.get("stderr_tail", []) if line.strip()][-8:]
            if tail:
                out += ["", "  ```", *(f"  {line}" for line in tail), "  ```"]

    any_size = mode != "full"
    outcomes = check.evaluate(records, any_size=any_size)
    out += ["", "## Goals", ""]
    if any_size:
        out += ["Checked at the sizes of this run (the goals are stated for 1M / 10M rows).", ""]
    out += ["| status | goal | measured |", "|---|---|---|"]
    badge = {"met": "met", "short": "**SHORT**", "missing": "not measured"}
    for outcome in outcomes:
        measured = (
            "; ".join(f"{check.format_value(outcome.goal, v)} at {where}" for where, v in outcome.values)
            or outcome.detail
        )
        out.append(f"| {badge[outcome.status]} | {_escape(outcome.goal.claim)} | {_escape(measured)} |")

    comparisons = [r for r in records if r.get("kind") == "comparison"]
    growths = [r for r in records if r.get("kind") == "growth"]
    verbatim = [r for r in records if r.get("kind") == "line"]
    areas = dict(AREAS)
    for record in records:
        if record.get("area") and record["area"] not in areas:
            areas[record["area"]] = f"Other: {record['area']}"
    for area, title in areas.items():
        mine = [r for r in comparisons if r["area"] == area]
        grown = [r for r in growths if r["area"] == area]
        lines = [r for r in verbatim if r["area"] == area]
        ran = [s for s in scripts if AREA_OF_SCRIPT.get(s["script"], s["script"]) == area]
        out += ["", f"## {title}", ""]
        if not (mine or grown or lines):
            out.append("Not measured in this run." if not ran else "No result recorded (see the script output).")
            continue
        if mine:
            out += [
                "| measurement | rows | ours | ours peak | baseline | baseline time | baseline peak | ours vs baseline |",
                "|---|--:|--:|--:|---|--:|--:|--:|",
            ]
            for r in mine:
                head = f"{_escape(r['name'])}" + (" ¹" if r.get("source") == "printed" else "")
                ours = r["ours"]
                base_items = list(r["baselines"].items()) or [(None, None)]
                for index, (_key, base) in enumerate(base_items):
                    first = index == 0
                    out.append(
                        "| "
                        + " | ".join(
                            [
                                head if first else "",
                                _rows(r.get("rows")) if first else "",
                                _timing_cell(ours) if first else "",
                                _mb(ours.get("peak_mb")) if first else "",
                                _escape(base["label"]) if base else "–",
                                _timing_cell(base) if base else "–",
                                _mb(base.get("peak_mb")) if base else "–",
                                _ratio_cell(base) if base else "–",
                            ]
                        )
                        + " |"
                    )
            if any(r.get("source") == "printed" for r in mine):
                out += ["", "¹ parsed from the script's printed line (recorded before the script used the harness)."]
        if grown:
            out += [
                "",
                "| growth | rows | time growth | peak RSS growth | points |",
                "|---|--:|--:|--:|---|",
            ]
            for r in grown:
                points = ", ".join(
                    f"{p['rows']:,}: " + " / ".join(x for x in (_s(p["seconds"]), _mb(p["peak_mb"])) if x != "–")
                    for p in r["points"]
                )
                time_growth = f"{r['time_ratio']:.2f}x" if r.get("time_ratio") else "–"
                rss_growth = f"{r['rss_ratio']:.2f}x" if r.get("rss_ratio") else "–"
                span = f"{r['points'][0]['rows']:,} → {r['points'][-1]['rows']:,} ({r['rows_ratio']:.0f}x)"
                out.append(f"| {_escape(r['name'])} | {span} | {time_growth} | {rss_growth} | {points} |")
        if lines:
            out += ["", "Printed lines kept verbatim (not parsed):", "", "```"]
            out += [r["line"] for r in lines]
            out += ["```"]

    curve = scale_points(records)
    out += ["", "## Scale curve", ""]
    if curve:
        out += ["![time and peak RSS against rows](scale_curve.png)", ""]
        out += ["| job | rows | time (median) | peak RSS |", "|---|--:|--:|--:|"]
        for label, points in curve.items():
            out += [f"| {label} | {n:,} | {_s(t)} | {_mb(p)} |" for n, t, p in points]
    else:
        out.append("No nightly or CSV rollup measurement in this run.")

    out += ["", "## Script output", ""]
    for s in scripts:
        status = "ok" if s["returncode"] == 0 else "FAILED"
        how = "harness" if s.get("reported") else "printed lines"
        out += [
            "<details>",
            f"<summary><code>benchmarks/{s['script']}.py {' '.join(s['args'])}</code>: {status}, "
            f"{s['seconds']:.0f} s, results via {how}</summary>",
            "",
            "```",
            *s["stdout"],
            *(["--- stderr (last lines) ---", *s["stderr_tail"]] if s.get("stderr_tail") else []),
            "```",
            "</details>",
            "",
        ]
    return "\n".join(out).rstrip() + "\n"


def scale_points(records: list[dict[str, Any]]) -> dict[str, list[tuple[int, float | None, float | None]]]:
    """Curve label -> [(rows, median seconds, peak MB)] for the nightly refresh and the CSV rollup."""
    curves: dict[str, dict[int, tuple[float | None, float | None]]] = {}
    for r in records:
        if r.get("kind") != "comparison" or r.get("rows") is None:
            continue
        if r["name"] == "csv_rollup":
            curves.setdefault("CSV rollup (ours)", {})[r["rows"]] = (r["ours"]["median_s"], r["ours"]["peak_mb"])
            duckdb = r["baselines"].get("duckdb")
            if duckdb:
                curves.setdefault("CSV rollup (DuckDB)", {})[r["rows"]] = (duckdb["median_s"], duckdb["peak_mb"])
        elif r["name"].startswith("nightly full "):
            backend = r["name"].removeprefix("nightly full ")
            curves.setdefault(f"nightly full refresh ({backend})", {})[r["rows"]] = (
                r["ours"]["median_s"],
                r["ours"]["peak_mb"],
            )
    return {label: [(n, *points[n]) for n in sorted(points)] for label, points in curves.items()}


def draw_scale_curve(records: list[dict[str, Any]], path: Path, title: str) -> bool:
    """Draw time and peak RSS against rows (log scales) as a PNG; False when there is nothing to draw."""
    curves = scale_points(records)
    if not curves:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, points in curves.items():
        style = "--" if "DuckDB" in label else "-"
        rows = [n for n, _, _ in points]
        left.plot(rows, [t for _, t, _ in points], style, marker="o", label=label)
        right.plot(rows, [p for _, _, p in points], style, marker="o", label=label)
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    sizes = sorted({n for points in curves.values() for n, _, _ in points})
    for axis, ylabel in ((left, "time (s, median; log scale)"), (right, "peak RSS (MB)")):
        axis.set_xscale("log")
        axis.set_xticks(sizes, [f"{n / 1e6:g}M" if n >= 1e6 else f"{n / 1e3:g}k" for n in sizes])
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.set_xlabel("rows (log scale)")
        axis.set_ylabel(ylabel)
        axis.grid(True, which="both", alpha=0.3)
    left.set_yscale("log")
    left.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    left.yaxis.set_major_formatter(ScalarFormatter())
    left.yaxis.set_minor_formatter(NullFormatter())
    right.set_ylim(bottom=0)
    right.legend(fontsize=8, loc="best")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def write_outputs(records: list[dict[str, Any]], out_dir: Path) -> None:
    """RESULTS.md and scale_curve.png in ``out_dir`` from the records of one run."""
    run = next((r for r in records if r.get("kind") == "run"), {})
    title = f"{run.get('mode', '?')} run of {run.get('started_at', '?')}"
    draw_scale_curve(records, out_dir / "scale_curve.png", f"Scale curve, {title}")
    (out_dir / "RESULTS.md").write_text(render_markdown(records), encoding="utf-8")


def _script_args(values: list[str]) -> dict[str, list[str]]:
    extra: dict[str, list[str]] = {}
    for value in values:
        name, _, args = value.partition("=")
        extra.setdefault(name.strip(), []).extend(shlex.split(args))
    return extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows per script (make bench-quick)")
    parser.add_argument("--only", help="comma-separated script names")
    parser.add_argument("--scale-rows", help="sizes of the scale curve (nightly, csv_rollup), e.g. 1000000,3000000")
    parser.add_argument("--script-args", action="append", default=[], help='extra arguments: "nightly=--repeat 3"')
    parser.add_argument("--out-dir", default=str(HERE), help="where RESULTS.md, RESULTS.jsonl and the PNG go")
    parser.add_argument("--timeout", type=float, help="seconds per script process (default: none; quick: 1200)")
    parser.add_argument("--render", metavar="JSONL", help="only render RESULTS.md and the PNG from a results file")
    args = parser.parse_args(argv)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.render:
        write_outputs(read_results(args.render), out_dir)
        print(f"# wrote {out_dir / 'RESULTS.md'}")
        return 0

    only = set(args.only.split(",")) if args.only else None
    names = [script.name for script in all_scripts()]
    unknown = (only or set()) - set(names)
    if unknown:
        parser.error(f"unknown script(s) {sorted(unknown)}; known: {', '.join(names)}")
    scale_rows = [int(n) for n in args.scale_rows.split(",")] if args.scale_rows else None
    base_mode = "quick" if args.quick else "full"
    mode = f"partial {base_mode}" if only or scale_rows or args.script_args else base_mode
    if mode == "partial full":
        mode = "partial"
    timeout = args.timeout or (1200 if args.quick else None)
    results = out_dir / "RESULTS.jsonl"
    machine = machine_description()
    run = {
        "kind": "run",
        "mode": mode,
        "started_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": shlex.join(["python", "benchmarks/run_all.py", *(argv if argv is not None else sys.argv[1:])]),
        "commit": _git_commit(),
        "machine": machine,
    }
    results.write_text(json.dumps(run) + "\n", encoding="utf-8")
    print(f"# {mode} benchmark run -> {results}")
    print("# machine: " + "; ".join(f"{k} {v}" for k, v in machine.items()), flush=True)

    failures = []
    for script, script_args in plan(base_mode, only, scale_rows, _script_args(args.script_args)):
        outcome = run_script(script.name, script_args, results, timeout_s=timeout, echo=lambda s: print(s, flush=True))
        with results.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(outcome) + "\n")
        if outcome["returncode"] != 0:
            failures.append(f"benchmarks/{script.name}.py {' '.join(script_args)}")
            print(f"# FAILED: {failures[-1]} (exit code {outcome['returncode']})", flush=True)
        elif not outcome["reported"]:
            print(f"# {script.name}: no harness records; printed lines kept verbatim", flush=True)

    write_outputs(read_results(results), out_dir)
    print(f"# wrote {out_dir / 'RESULTS.md'} and {out_dir / 'scale_curve.png'}")
    if failures:
        print("# failed: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
