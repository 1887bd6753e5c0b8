"""What the pipeline logged while a soak ran steadily (after start-up, before shutdown).

A healthy pipeline under a steady load has nothing to log at ERROR: an ERROR line fails the soak
(this is how the worker's false commit-livelock ERROR, every few seconds from minute 5, was
found). Warnings are counted and the first of each shown, not judged: a fallback to paging, say,
is worth reading but is not a fault.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

FAILING = frozenset({"ERROR", "CRITICAL"})
# Python's logging as BigBrotr formats it ("2026-12-06 15:42:55,764 WARNING name: ...") and
# Faust's ("[2026-12-06 15:42:53,422] [467] [ERROR] ...").
_LEVEL = re.compile(r"^(?:\S+ \S+ |\[[^\]]+\] \[\d+\] \[)(ERROR|CRITICAL|WARNING)\b")


@dataclass
class LogReport:
    lines: Counter[tuple[str, str]] = field(default_factory=Counter)  # (component, level) -> n
    first: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return sum(n for (_, level), n in self.lines.items() if level in FAILING)

    def describe(self) -> list[str]:
        if not self.lines:
            return ["logged while steady: no warnings, no errors"]
        return [
            f"logged while steady: {component} {n:,} {level} line(s), first: "
            f"{self.first[(component, level)]}"
            for (component, level), n in sorted(self.lines.items())
        ]


def read_log(path: Path, start: int, end: int) -> LogReport:
    """The warnings and errors in bytes `start..end` of a supervisor's log (`name | line`)."""
    with path.open("rb") as log:
        log.seek(start)
        text = log.read(max(end - start, 0)).decode(errors="replace")
    report = LogReport()
    for line in text.splitlines():
        component, separator, message = line.partition(" | ")
        found = _LEVEL.match(message) if separator else None
        if found is None:
            continue
        key = (component.strip(), found.group(1))
        report.lines[key] += 1
        report.first.setdefault(key, message[:300])
    return report
