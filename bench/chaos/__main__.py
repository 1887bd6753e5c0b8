"""Chaos test: the end-to-end pipeline (sync, worker, sink processes) archives local relays on a
private Kafka and PostgreSQL while each process kind is killed with SIGKILL and restarted, and the
broker and the database server are restarted; then every raw record must be accounted for, with
no duplicates, and a replay must give the live database's checksums.

Loopback only; it stops by itself. Run from the checkout: `.venv/bin/python -m bench.chaos`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
from pathlib import Path

from bench.chaos.run import ACTIONS, ChaosReport, run_chaos


def summary(report: ChaosReport) -> str:
    audit = report.audit
    lines = [
        f"seed {report.seed}: {len(report.actions)} actions: "
        + ", ".join(f"{action} at {at:.0f} s" for at, action in report.actions),
        f"{len(report.live_ids)} events published live during the chaos; settled "
        f"{report.settled_s:.0f} s after it",
        f"raw records {audit.raw:,} = valid sightings {audit.valid:,} + rejects "
        f"{audit.rejected:,}"
        + ("" if audit.valid + audit.rejected == audit.raw else "  (NOT ACCOUNTED FOR)"),
    ]
    lines += [f"PROBLEM: {problem}" for problem in audit.problems]
    lines.append("chaos: every guarantee held" if report.ok else "chaos: FAILED")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events on the relays")
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of chaos")
    parser.add_argument("--interval", type=float, default=15.0, help="seconds between actions")
    parser.add_argument("--settle", type=float, default=600.0, help="seconds to finish after it")
    parser.add_argument("--seed", type=int, help="the actions' order (random when not given)")
    parser.add_argument(
        "--only",
        action="append",
        choices=[action.replace(" ", "-") for action in ACTIONS],
        help="draw actions from these kinds only (repeatable; default: all)",
    )
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    with tempfile.TemporaryDirectory(prefix="bigbrotr-chaos-") as tmp:
        report = asyncio.run(
            run_chaos(
                events=args.events,
                duration_s=args.duration,
                interval_s=args.interval,
                settle_s=args.settle,
                seed=seed,
                workdir=Path(tmp),
                kinds=[kind.replace("-", " ") for kind in args.only or ACTIONS],
            )
        )
    print(summary(report))
    if not report.ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
