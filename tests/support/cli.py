"""Run the `bigbrotr` command as a user does: a real process, with only the given settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIGBROTR = [sys.executable, "-c", "from bigbrotr.cli import main; main()"]


def run_bigbrotr(
    args: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """Settings from the caller's environment are dropped, so only `env` configures the run."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BIGBROTR_")}
    return subprocess.run(
        [*BIGBROTR, *args],
        env={**clean, "COLUMNS": "200", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
