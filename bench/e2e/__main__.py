"""End-to-end benchmark: N signed events on local relays archived by the real `bigbrotr sync`,
`worker` and `sink` processes into PostgreSQL; events/s per stage, end-to-end time, commit
latency, peak memory per process, and the ceilings of the same run.

Run from the checkout against the dev stack: `.venv/bin/python -m bench.e2e --events 100000`.
"""

from __future__ import annotations

import argparse
import asyncio

from bench.e2e.run import E2eResult, run_e2e

_UNITS = {
    "sync": "raw records into events.raw",
    "worker": "raw records validated (offsets committed)",
    "sink": "rows stored (events + sightings)",
}


def report(result: E2eResult, events: int) -> str:
    lines = [
        f"archive: {result.events:,} events, {result.sightings:,} sightings, rejects "
        f"{dict(sorted(result.rejects.items()))}; {result.raw_records:,} raw records "
        f"({'complete' if result.complete else 'INCOMPLETE'})",
        f"relays filled in {result.fill_s:.1f} s ({events / result.fill_s:,.0f} events/s)",
    ]
    rows = result.events + result.sightings
    for stage, rate in result.stages.items():
        if rate is None:
            lines.append(f"{stage:>6}: no progress seen")
            continue
        done = rows if stage == "sink" else rate.offsets
        lines.append(
            f"{stage:>6}: {done / rate.seconds:9,.0f}/s  {_UNITS[stage]}: {done:,} in "
            f"{rate.seconds:.1f} s ({rate.first_s:.1f} s -> {rate.done_s:.1f} s)"
        )
    lines += [
        f"end to end: {result.end_to_end_s:.1f} s from announcing the relays to the last row "
        f"({events / result.end_to_end_s:,.0f} events/s)",
        f"latency seen_at -> row committed: p50 {result.p50_s:.2f} s, p99 {result.p99_s:.2f} s",
        "peak RSS: "
        + ", ".join(f"{name} {mib:,.0f} MiB" for name, mib in sorted(result.peak_mib.items())),
        f"ceiling, validate loop (parse, id, BIP-340): {result.signatures.per_second:,.0f} "
        f"events/s over {result.signatures.items:,}",
        f"ceiling, bare COPY of the same rows: {result.copy.per_second:,.0f} rows/s "
        f"({result.copy.items:,} rows in {result.copy.seconds:.1f} s)",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="distinct signed events")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of every topic")
    parser.add_argument("--timeout", type=float, help="seconds (default: 600 + N/100)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the run's database and topics for inspection"
    )
    parser.add_argument(
        "--negentropy",
        action="store_true",
        help="let the synchronizer reconcile by NIP-77 against the archive (off: it pages; the "
        "archive starts empty, so NIP-77 would list every id as missing anyway)",
    )
    args = parser.parse_args()
    if args.events < 100:
        parser.error("--events must be at least 100")
    timeout = args.timeout or 600 + args.events / 100
    result = asyncio.run(run_e2e(args.events, args.partitions, timeout, args.keep, args.negentropy))
    print(report(result, args.events))
    if not result.complete:
        raise SystemExit("the archive does not hold exactly the corpus: the figures mean nothing")


if __name__ == "__main__":
    main()
