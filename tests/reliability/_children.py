"""Work done in child processes that the reliability tests kill with SIGKILL.

Each entry point prints a line when it is *inside* the operation to be
interrupted, so the parent can kill it at a known point. Run as::

    python -c "from tests.reliability._children import main; main()" <entry> [args...]

with the environment of :func:`tests.dbutil.child_env` (same test database,
``DW_OUTPUT_DIR`` and ``DW_DATA_DIR`` of the test).
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Iterator
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa

MONEY = pd.ArrowDtype(pa.decimal128(14, 2))
SNAPSHOT_FOLDER = "killed_snapshots"
#: rows per chunk of the published table
SNAPSHOT_CHUNK = 5_000
SNAPSHOT_CHUNKS = 6


def destino_frame(n_rows: int, generation: int) -> pd.DataFrame:
    """``n_rows`` Destino rows whose values depend on ``generation`` (old = 1, new = 2)."""
    cents = (np.arange(n_rows, dtype=np.int64) * 7 + generation * 1_000) % 10_000_000
    return pd.DataFrame(
        {
            "id_externo": [f"G{generation}-{i:07d}" for i in range(n_rows)],
            "valor": pd.array([Decimal(int(c)).scaleb(-2) for c in cents], dtype=MONEY),
            "data": [dt.date(2026, 1, 1) + dt.timedelta(days=int(i % 365)) for i in range(n_rows)],
        }
    )


def snapshot_chunk(iteration: int, index: int) -> pd.DataFrame:
    """One chunk of version ``iteration`` of the published table: every row names its iteration."""
    start = index * SNAPSHOT_CHUNK
    return pd.DataFrame(
        {
            "row": np.arange(start, start + SNAPSHOT_CHUNK, dtype=np.int64),
            "iteration": np.full(SNAPSHOT_CHUNK, iteration, dtype=np.int64),
            "payload": np.full(SNAPSHOT_CHUNK, f"run {iteration}"),
        }
    )


def snapshot_rows(iteration: int) -> int:
    """Rows of version ``iteration`` (one chunk more every 3 versions, so sizes differ)."""
    return SNAPSHOT_CHUNK * (SNAPSHOT_CHUNKS + iteration % 3)


def _say(line: str) -> None:
    print(line, flush=True)


def load_destino(n_rows: str, mode: str) -> None:
    """Replace / upsert Destino with generation 2, announcing each written batch (slowly)."""
    from dw_analytics.load import models as load_models
    from dw_analytics.sales.models import Destino

    def announce(rows_done: int) -> None:
        _say(f"BATCH {rows_done}")
        time.sleep(0.02)  # a long load: the kill lands while it is inside

    load_models.on_batch_written = announce
    load_models.write_model(destino_frame(int(n_rows), 2), Destino, mode=mode, batch_size=2_000)
    _say("COMMITTED")


def publish_loop(kill_point: str) -> None:
    """Publish versions 1, 2, 3... of a snapshot forever, announcing ``kill_point`` of each."""
    from dw_analytics.load import parquet

    if kill_point == "pointer":
        original = parquet.write_text_atomic

        def announce_switch(target, text):
            _say(f"SWITCH {iteration}")
            return original(target, text)

        parquet.write_text_atomic = announce_switch

    def chunks(iteration: int) -> Iterator[pd.DataFrame]:
        for index in range(snapshot_rows(iteration) // SNAPSHOT_CHUNK):
            yield snapshot_chunk(iteration, index)
            if index == 0:
                _say(f"WRITING {iteration}")

    iteration = 0
    while True:
        iteration += 1
        parquet.publish_snapshot(
            {"fact": chunks(iteration), "dim": pd.DataFrame({"iteration": [iteration]})},
            SNAPSHOT_FOLDER,
            keep=3,
            run_id=iteration,
            metadata={"iteration": str(iteration)},
            row_group_size=SNAPSHOT_CHUNK,
        )
        _say(f"DONE {iteration}")


def nightly_killed_while_publishing() -> None:
    """Run the nightly; once its Parquet publish has written the fact's first chunk, stall."""
    from django.core.management import call_command

    from dw_analytics.pipelines import nightly

    original = nightly.publish_snapshot

    def stalling_publish(tables, folder, **kwargs):
        fact = tables["fact_sales"]

        def stall_after_first_chunk():
            for index, chunk in enumerate(fact):
                yield chunk
                if index == 0:
                    _say("PUBLISHING")
                    time.sleep(120)

        return original({**tables, "fact_sales": stall_after_first_chunk()}, folder, **kwargs)

    nightly.publish_snapshot = stalling_publish
    call_command("refresh_warehouse", "--quiet")


ENTRY_POINTS = {
    "load_destino": load_destino,
    "publish_loop": publish_loop,
    "nightly_killed_while_publishing": nightly_killed_while_publishing,
}


def main() -> None:
    import django

    django.setup()
    entry, *args = sys.argv[1:]
    ENTRY_POINTS[entry](*args)
