"""Plain-text rendering of run logs and run history for the commands."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dw_analytics.core.runlog import RunLog


def text_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A fixed-width text table; numbers right-aligned.

    Example:
        >>> print(text_table(["a", "n"], [["x", 1]]))
        a  n
        -  -
        x  1
    """
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in row] for row in rows]
    numeric = [all(_is_number(r[i]) for r in cells[1:]) and len(cells) > 1 for i in range(len(headers))]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w) for v, w, num in zip(row, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(cells[0]), line(["-" * w for w in widths]), *(line(r) for r in cells[1:])])


def _is_number(text: str) -> bool:
    return text.replace(",", "").replace(".", "", 1).lstrip("-").isdigit()


def format_run_log(log: RunLog) -> str:
    """A short human summary of a run: status, counts, then one line per step."""
    head = (
        f"{log.pipeline} run {log.run_id}: {log.status} in {log.duration_s:.2f} s, "
        f"{log.n_processed:,} processed, {log.n_errors:,} errors, "
        f"{log.n_inserted:,} inserted, {log.n_updated:,} updated, {log.n_deleted:,} deleted, "
        f"peak {log.peak_rss_mb:.0f} MB"
    )
    steps = text_table(
        ["step", "seconds", "rows", "peak MB"],
        [
            [s.name, f"{s.duration_s:.3f}", "" if s.n_rows is None else f"{s.n_rows:,}", f"{s.peak_rss_mb:.0f}"]
            for s in log.steps
        ],
    )
    error = f"\nerror: {log.error}" if log.error else ""
    return f"{head}\n{steps}{error}"
