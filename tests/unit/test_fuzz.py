"""The short fuzzing run `make test` includes: each target for a few seconds, from the seeds.

`make fuzz` (or `python -m tests.fuzz all --seconds N`) is the long run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.hostile

pytest.importorskip("atheris", reason="atheris installs on Linux x86_64 only")

REPO = Path(__file__).parents[2]
SECONDS = 10


def test_a_short_fuzzing_run_finds_no_crash(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fuzz",
            "all",
            "--seconds",
            str(SECONDS),
            "--corpus",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SECONDS * 2 + 120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["fuzz event", "fuzz frames"]
    for line in lines:
        executed = int(line.split(": ")[1].split()[0])
        assert executed > 1000, line
    assert not any((tmp_path / "crashes").iterdir())
    assert any((tmp_path / "frames").iterdir()), "the fuzzer kept no corpus"
