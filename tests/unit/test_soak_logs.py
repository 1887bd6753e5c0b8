"""The soak's reading of the pipeline log: levels in both formats the processes write, only
inside the steady part, and only ERROR or CRITICAL fail it."""

from __future__ import annotations

from pathlib import Path

from bench.soak.logs import read_log

START = "sync   | 2026-12-06 15:40:00,000 ERROR bigbrotr.sync: during start-up\n"
STEADY = (
    "worker | [2026-12-06 15:42:53,422] [467] [ERROR] [^---_StableOffsetThread]: Has not "
    "committed TP(topic='events.raw', partition=2)\n"
    "worker | \n"
    "worker | There are multiple possible explanations: an ERROR in prose is no level\n"
    "sync   | 2026-12-06 15:42:55,764 WARNING bigbrotr.sync: ws://127.0.0.1:1: paging it\n"
    "sync   | 2026-12-06 15:42:56,764 WARNING bigbrotr.sync: ws://127.0.0.1:2: paging it\n"
    "sink   | 2026-12-06 15:42:57,000 INFO bigbrotr.sink: wrote 500 rows\n"
    "worker | [2026-12-06 15:43:00,000] [467] [CRITICAL] [^Worker]: gave up\n"
)
END = "worker | [2026-12-06 15:50:00,000] [467] [ERROR] while stopping\n"


def test_only_the_steady_part_is_read_and_errors_fail_it(tmp_path: Path) -> None:
    log = tmp_path / "pipeline.log"
    log.write_text(START + STEADY + END)
    start = len(START.encode())
    report = read_log(log, start, start + len(STEADY.encode()))

    assert report.lines == {
        ("worker", "ERROR"): 1,
        ("worker", "CRITICAL"): 1,
        ("sync", "WARNING"): 2,
    }
    assert report.errors == 2
    assert "Has not committed" in report.first[("worker", "ERROR")]
    assert "127.0.0.1:1" in report.first[("sync", "WARNING")]
    assert len(report.describe()) == 3


def test_a_quiet_log_passes(tmp_path: Path) -> None:
    log = tmp_path / "pipeline.log"
    log.write_text("sink   | 2026-12-06 15:42:57,000 INFO bigbrotr.sink: wrote 500 rows\n")
    report = read_log(log, 0, log.stat().st_size)
    assert report.errors == 0
    assert report.describe() == ["logged while steady: no warnings, no errors"]
