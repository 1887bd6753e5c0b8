"""Soak: the end-to-end pipeline (`bigbrotr sync`, `worker`, `sink` processes) archives a steady
stream of new events published to two local relays, for a set duration; prints the resident
memory of each process over time and a flat / not-flat verdict per process (`bench.soak.verdict`).
It also prints the worker's table memory (RocksDB), which fills its fixed budget,
`streams.table_memory_mib`, in about ten minutes at `--rate 200` (twenty-odd at 100), and
checks that the budget holds.

Run from the checkout against the dev stack: `.venv/bin/python -m bench.soak --minutes 30
--rate 200`. Exits 1 when a process's memory is not flat, the archive misses an event, or a
process logs an ERROR while the load is steady (`bench.soak.logs`).
"""

from __future__ import annotations

import argparse
import asyncio

from bench.soak.run import SoakResult, run_soak


def summary(result: SoakResult) -> str:
    lines = [
        f"published {result.published:,} events at {result.rate:g}/s for {result.minutes:g} min; "
        f"stored {result.stored:,}; latency seen_at -> row committed p50 {result.p50_s:.2f} s, "
        f"p99 {result.p99_s:.2f} s",
    ]
    lines.append(result.losses.amplification)
    lines += result.losses.describe(result.started)
    for name, found in sorted(result.trends.items()):
        if found is None:
            lines.append(f"{name:>13}: too short a run for a verdict")
            continue
        verdict = "flat" if found.flat else "NOT FLAT"
        lines.append(
            f"{name:>13}: second half {found.slope_mib_per_min:+.2f} MiB/min "
            f"({found.growth_mib:+.1f} MiB over it, mean {found.mean_mib:.0f} MiB): {verdict}"
        )
    peak = max(result.tables.values(), default=float("nan"))
    lines.append(
        f"{'worker tables':>13}: peak {peak:.1f} MiB of a {result.table_budget_mib:g} MiB budget: "
        + ("within it" if result.tables_within_budget else "OVER IT")
    )
    lines += result.logs.describe()
    if result.restarted:
        lines.append(f"restarted during the soak: {', '.join(result.restarted)}")
    lines.append("soak: memory flat, nothing lost" if result.ok else "soak: FAILED")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to publish")
    parser.add_argument("--rate", type=float, default=200.0, help="new events a second")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between samples")
    parser.add_argument(
        "--live-session",
        type=float,
        default=300.0,
        help="seconds between the synchronizer's live-subscription renewals",
    )
    args = parser.parse_args()
    if min(args.rate, args.minutes, args.interval, args.live_session) <= 0:
        parser.error("--minutes, --rate, --interval and --live-session must be positive")
    result = asyncio.run(run_soak(args.minutes, args.rate, args.interval, args.live_session))
    print(summary(result))
    if not result.ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
