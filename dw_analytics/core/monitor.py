"""Measure wall time and peak resident memory of a block of code.

On Linux the kernel's high-water mark (``VmHWM``) is reset at the start of
each block by writing ``5`` to ``/proc/self/clear_refs``, so every step gets
its own exact peak at no sampling cost. Elsewhere a light sampling thread is
used instead.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psutil

_HWM = re.compile(rb"VmHWM:\s+(\d+)\s+kB")
_STATUS = "/proc/self/status"


def _read_hwm_mb() -> float | None:
    try:
        with open(_STATUS, "rb") as f:
            match = _HWM.search(f.read())
    except OSError:
        return None
    return int(match.group(1)) / 1024 if match else None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def current_rss_mb() -> float:
    """Resident memory of this process now, in MB.

    Example:
        >>> current_rss_mb() > 0
        True
    """
    return psutil.Process().memory_info().rss / 2**20


@dataclass
class Measurement:
    """Filled in when the measured block ends."""

    duration_s: float = 0.0
    peak_rss_mb: float = 0.0
    start_rss_mb: float = 0.0


class _Sampler(threading.Thread):
    def __init__(self, interval: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peak = current_rss_mb()
        self._stop_event = threading.Event()

    def run(self) -> None:
        process = psutil.Process()
        while not self._stop_event.wait(self.interval):
            self.peak = max(self.peak, process.memory_info().rss / 2**20)

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        return max(self.peak, current_rss_mb())


_open: list[Measurement] = []


@contextmanager
def measure() -> Iterator[Measurement]:
    """Time a block and record its peak RSS.

    Blocks nest: an inner block's peak also counts for the blocks around it
    (the kernel's high-water mark is reset at each start).

    Example:
        >>> with measure() as m:
        ...     data = bytearray(10_000_000)
        >>> m.peak_rss_mb >= m.start_rss_mb
        True
    """
    result = Measurement(start_rss_mb=current_rss_mb())
    result.peak_rss_mb = result.start_rss_mb
    exact = _reset_hwm() and _read_hwm_mb() is not None
    sampler = None if exact else _Sampler()
    if sampler:
        sampler.start()
    _open.append(result)
    started = time.perf_counter()
    try:
        yield result
    finally:
        result.duration_s = time.perf_counter() - started
        _open.pop()
        own_peak = sampler.stop() if sampler else (_read_hwm_mb() or 0.0)
        result.peak_rss_mb = max(result.peak_rss_mb, own_peak)
        if _open:
            _open[-1].peak_rss_mb = max(_open[-1].peak_rss_mb, result.peak_rss_mb)
