"""The CI-sized chaos run (`bench.chaos`): sync, worker and sink killed with SIGKILL and restarted,
the broker and PostgreSQL restarted, during an end-to-end load on a private Kafka and PostgreSQL;
then every raw record is accounted for, nothing is duplicated, and replay gives the same
checksums. The full run is `.venv/bin/python -m bench.chaos`."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bench.chaos.run import ACTIONS, run_chaos

pytestmark = pytest.mark.integration


@pytest.mark.timeout(420)
async def test_kills_and_restarts_during_a_load_lose_and_duplicate_nothing(
    tmp_path: Path,
) -> None:
    seed = random.randrange(1 << 30)
    report = await run_chaos(
        events=2_000, duration_s=50, interval_s=9, settle_s=180, seed=seed, workdir=tmp_path
    )
    assert {action for _, action in report.actions} == set(ACTIONS), f"seed {seed}"
    assert report.live_ids, "nothing was published while the chaos went on"
    audit = report.audit
    assert audit.rejected > 0, "no invalid event reached the worker"
    assert audit.valid + audit.rejected == audit.raw >= 2 * 1_800 + 2 * len(report.live_ids)
    assert report.audit.problems == [], f"seed {seed}"
