"""Resident memory of the pipeline's processes, read from /proc (Linux).

`VmHWM` is the kernel's own peak of a process's resident set, so the peak needs no fast polling;
it only has to be read before the process ends. A component killed and restarted is several
processes: its peak is the highest of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def _status_kib(pid: int, field: str) -> int | None:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return None


def rss_mib(pid: int) -> float | None:
    """The resident set of `pid` now, in MiB; None once it is gone."""
    kib = _status_kib(pid, "VmRSS")
    return None if kib is None else kib / 1024


class PeakMemory:
    """Call `sample(pids)` now and then (and before the processes stop); `peaks` by component."""

    def __init__(self) -> None:
        self.peaks: dict[str, float] = {}

    def sample(self, pids: Mapping[str, int]) -> None:
        for name, pid in pids.items():
            kib = _status_kib(pid, "VmHWM")
            if kib is not None:
                self.peaks[name] = max(self.peaks.get(name, 0.0), kib / 1024)
