"""Fuzz the validator and the relay message handling with atheris (coverage-guided libFuzzer).

    python -m tests.fuzz [event|frames|all] [--seconds N] [--corpus DIR]

Each target runs in its own process for N seconds (default 60), starting from seeds (real events,
the forgery catalogue, one frame of each relay message) and the corpus it kept in DIR from earlier
runs (default `.state/fuzz`). A crash, a hang (one input running over 10 s) or memory over 2 GiB
stops that target: the input is saved in DIR/crashes and the exit status is 1. `make test` runs
a short version (tests/unit/test_fuzz.py); `make fuzz` a long one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.fuzz.targets import TARGETS
from tests.support.forgeries import forgeries

REPO = Path(__file__).parents[2]
REAL_EVENTS = (REPO / "tests" / "data" / "real_events.jsonl").read_text().splitlines()
PER_INPUT_TIMEOUT_S = 10
RSS_LIMIT_MB = 2048
MAX_LEN = 16_384
_EXECUTED = re.compile(r"stat::number_of_executed_units: (\d+)")
_COVERAGE = re.compile(r"cov: (\d+)")


def seeds(target: str) -> list[bytes]:
    events = REAL_EVENTS + [forgery.text for forgery in forgeries()]
    if target == "event":
        return [text.encode() for text in events]
    frames = [f'["EVENT","s",{text}]' for text in events[:20]] + [
        json.dumps(message)
        for message in (
            ["EOSE", "s"],
            ["CLOSED", "s", "auth-required: log in"],
            ["NOTICE", "hello"],
            ["AUTH", "challenge"],
            ["OK", "00" * 32, True, ""],
            ["NEG-MSG", "s", "6100"],
            ["NEG-ERR", "s", "blocked"],
        )
    ]
    return ["\n".join(frames[i : i + 3]).encode() for i in range(len(frames))]


def fuzz(target: str, seconds: int, corpus: Path) -> tuple[int, int, int]:
    """Run one target; its exit status, the inputs it ran and the code edges they covered."""
    kept = corpus / target
    crashes = corpus / "crashes"
    kept.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"fuzz-seeds-{target}-") as seed_dir:
        for seed in seeds(target):
            (Path(seed_dir) / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
        command = [
            sys.executable,
            "-m",
            "tests.fuzz.run",
            target,
            str(kept),
            seed_dir,
            f"-max_total_time={seconds}",
            f"-timeout={PER_INPUT_TIMEOUT_S}",
            f"-rss_limit_mb={RSS_LIMIT_MB}",
            f"-max_len={MAX_LEN}",
            f"-artifact_prefix={crashes}/{target}-",
            "-print_final_stats=1",
        ]
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-20_000:])
    executed = _EXECUTED.search(done.stderr)
    covered = _COVERAGE.findall(done.stderr)
    return (
        done.returncode,
        int(executed.group(1)) if executed else 0,
        int(covered[-1]) if covered else 0,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fuzz", description=__doc__.split("\n")[1]
    )
    parser.add_argument("target", nargs="?", default="all", choices=[*TARGETS, "all"])
    parser.add_argument("--seconds", type=int, default=60, help="time per target")
    parser.add_argument("--corpus", type=Path, default=REPO / ".state" / "fuzz")
    args = parser.parse_args()
    failed = False
    for target in TARGETS if args.target == "all" else [args.target]:
        status, executed, covered = fuzz(target, args.seconds, args.corpus)
        verdict = "ok" if status == 0 else f"FAILED (exit {status}, see {args.corpus}/crashes)"
        print(
            f"fuzz {target}: {executed} inputs in {args.seconds}s, {covered} edges, {verdict}",
            flush=True,
        )
        failed = failed or status != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
