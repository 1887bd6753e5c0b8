"""Validated events per second through `bigbrotr worker`, against the bare validator loop.

Each round makes fresh topics (a new `bench.<random>.` prefix), starts one (then two) real worker
processes with the default settings (exactly-once), waits until their consumer group is stable,
fills `events.raw` with the load of `bench.stream_load` (in well under a second), and reads
`events` and `sightings` read_committed until every expected output is there. The clock starts
at the first output a worker produced (its record timestamp), so process start-up and the first
rebalance are excluded; it stops when the last expected output is visible, so the final
transaction's commit is included. `--fill-first` fills before starting the workers instead.
The ceiling is `streams.validate.validate` over the same raw texts in this process, no Kafka.
Run from the checkout: `.venv/bin/python -m bench.stream_bench`.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupState,
    KafkaException,
    TopicPartition,
)

from bench.stream_load import RawLoad, build_load, fill
from bigbrotr.codec import Codec
from bigbrotr.config import Settings, load_settings
from bigbrotr.topics import create_topics, new_admin
from streams.validate import Limits, validate

TARGET = 0.6
QUIET_S = 3.0  # after the last expected output, how long to watch for extra (duplicate) ones
# cProfile.run dumps its file when the worker returns or raises SystemExit on SIGTERM.
PROFILED_MAIN = "import cProfile, sys; cProfile.run('main()', sys.argv.pop(1))"


@dataclass(frozen=True)
class Rate:
    records: int
    seconds: float
    commit_tail_s: float = 0.0  # last output produced -> visible to read_committed

    @property
    def per_second(self) -> float:
        return self.records / self.seconds


def ceiling(load: RawLoad, limits: Limits) -> Rate:
    """The same parse + id + signature work on the same texts, in one loop, without Kafka."""
    now = int(time.time())
    started = time.perf_counter()
    for text in load.texts:
        validate(text, limits, now)
    return Rate(len(load.texts), time.perf_counter() - started)


def round_settings(base: Settings, partitions: int) -> Settings:
    prefix = f"bench.{uuid.uuid4().hex[:12]}."
    topics = {
        name: spec.model_copy(update={"partitions": partitions})
        for name, spec in base.kafka.topics.items()
    }
    kafka = base.kafka.model_copy(update={"topic_prefix": prefix, "topics": topics})
    return base.model_copy(update={"kafka": kafka})


@contextmanager
def bench_topics(settings: Settings) -> Iterator[None]:
    """The round's topics, then deleted with every topic the workers made under its prefix."""
    create_topics(settings.kafka)
    try:
        yield
    finally:
        admin = new_admin(settings.kafka.bootstrap_servers)
        prefix = settings.kafka.topic_prefix
        ours = [name for name in admin.list_topics(timeout=10).topics if name.startswith(prefix)]
        if ours:
            for future in admin.delete_topics(ours, operation_timeout=30).values():
                future.result(timeout=30)


def _env(settings: Settings, data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "BIGBROTR_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "BIGBROTR_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
        "BIGBROTR_KAFKA__TOPICS": json.dumps(
            {name: spec.model_dump() for name, spec in settings.kafka.topics.items()}
        ),
        "BIGBROTR_STREAMS__DATA_DIR": str(data_dir),
        "BIGBROTR_LOG_LEVEL": "WARNING",
    }


@contextmanager
def workers(
    settings: Settings, count: int, workdir: Path, profile: Path | None
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` worker processes, each with its own data dir; SIGTERM and reaped on exit."""
    processes: list[subprocess.Popen[bytes]] = []
    for number in range(count):
        main = "from bigbrotr.cli import main; " + ("main()" if profile is None else PROFILED_MAIN)
        argv = [sys.executable, "-c", main, *([str(profile)] if profile else []), "worker"]
        log = (workdir / f"worker-{number}.log").open("wb")
        processes.append(
            subprocess.Popen(
                argv,
                env=_env(settings, workdir / f"state-{number}"),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    try:
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for_group(
    settings: Settings, count: int, processes: Sequence[subprocess.Popen[bytes]], timeout_s: float
) -> None:
    """Until the workers' consumer group is stable with all `count` of them holding partitions
    of `events.raw`, so that no rebalance falls inside the measurement."""
    admin = new_admin(settings.kafka.bootstrap_servers)
    group = f"{settings.kafka.topic_prefix}{settings.streams.app_id}"
    raw_topic = settings.kafka.topic("events.raw")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes):
            raise SystemExit("a worker died while joining its group")
        try:
            description = admin.describe_consumer_groups([group])[group].result(timeout=10)
        except KafkaException:  # the group's coordinator is not there yet
            time.sleep(0.5)
            continue
        holders = [
            member
            for member in description.members
            if any(tp.topic == raw_topic for tp in member.assignment.topic_partitions)
        ]
        if description.state == ConsumerGroupState.STABLE and len(holders) == count:
            return
        time.sleep(0.5)
    raise SystemExit(f"the {count} worker(s) did not form a stable group in {timeout_s:.0f}s")


@dataclass
class Outputs:
    events: list[bytes]
    sightings: list[bytes]
    first_produced_ms: int
    last_produced_ms: int
    complete_at: float  # wall clock when the last expected output was visible


def read_outputs(
    settings: Settings,
    load: RawLoad,
    processes: Sequence[subprocess.Popen[bytes]],
    timeout_s: float,
) -> Outputs:
    """Everything committed on `events` and `sightings`, until all expected arrived plus QUIET_S."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"{settings.kafka.topic_prefix}bench-reader",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    events_topic = settings.kafka.topic("events")
    partitions = settings.kafka.topics["events"].partitions
    consumer.assign(  # assigned, not subscribed: no group rebalance can replay what was read
        [
            TopicPartition(topic, partition, OFFSET_BEGINNING)
            for topic in (events_topic, settings.kafka.topic("sightings"))
            for partition in range(partitions)
        ]
    )
    got: dict[bool, list[bytes]] = {True: [], False: []}
    stamps: list[int] = []
    complete_at: float | None = None
    deadline = time.monotonic() + timeout_s
    try:
        while complete_at is None or time.time() < complete_at + QUIET_S:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise SystemExit(
                    f"incomplete after {timeout_s:.0f}s or a worker died: {len(got[True])} of "
                    f"{len(load.ids)} events, {len(got[False])} of {load.sightings} sightings"
                )
            for message in consumer.consume(num_messages=1000, timeout=0.2):
                if message.error() is not None:
                    continue
                got[message.topic() == events_topic].append(message.value() or b"")
                stamps.append(message.timestamp()[1])
            enough = len(got[True]) >= len(load.ids) and len(got[False]) >= load.sightings
            if enough and complete_at is None:
                complete_at = time.time()
    finally:
        consumer.close()
    assert complete_at is not None
    return Outputs(got[True], got[False], min(stamps), max(stamps), complete_at)


def verify(outputs: Outputs, load: RawLoad, codec: Codec, label: str) -> None:
    """A fast wrong run means nothing: every raw record must be accounted for exactly once."""
    ids = [codec.decode("Event", value)["id"] for value in outputs.events]
    facts = {
        (s["event_id"], s["relay_url"], s["seen_at"])
        for s in (codec.decode("Sighting", value) for value in outputs.sightings)
    }
    problems = []
    if len(ids) != len(set(ids)):
        problems.append(f"{len(ids) - len(set(ids))} event ids emitted twice")
    if set(ids) != load.ids:
        problems.append(f"{len(load.ids - set(ids))} ids missing, {len(set(ids) - load.ids)} extra")
    if len(outputs.sightings) != load.sightings or len(facts) != load.sightings:
        problems.append(
            f"{len(outputs.sightings)} sightings ({len(facts)} distinct), expected {load.sightings}"
        )
    if problems:
        detail = "; ".join(problems)
        raise SystemExit(f"{label}: the output is wrong, the figures mean nothing: {detail}")


def worker_run(
    base: Settings,
    load: RawLoad,
    count: int,
    partitions: int,
    profile: Path | None,
    fill_first: bool,
) -> Rate:
    settings = round_settings(base, partitions)
    codec = Codec()
    with tempfile.TemporaryDirectory() as tmp, bench_topics(settings):
        workdir = Path(tmp)
        if fill_first:
            fill(settings, load)
        try:
            with workers(settings, count, workdir, profile) as processes:
                if not fill_first:
                    wait_for_group(settings, count, processes, timeout_s=120)
                    fill(settings, load)
                outputs = read_outputs(settings, load, processes, timeout_s=300)
        except SystemExit:
            for log in sorted(workdir.glob("worker-*.log")):
                print(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-3000:]}")
            raise
    verify(outputs, load, codec, f"{count} worker(s)")
    elapsed = outputs.complete_at - outputs.first_produced_ms / 1000
    tail = outputs.complete_at - outputs.last_produced_ms / 1000
    return Rate(len(load.records), elapsed, tail)


def _best(rates: Sequence[Rate]) -> Rate:
    return max(rates, key=lambda rate: rate.per_second)


def main(
    records: int,
    rounds: int,
    partitions: int,
    profile: Path | None,
    fill_first: bool,
    two_workers: bool = True,
) -> float:
    base = load_settings()
    load = build_load(records, Codec())
    print(
        f"{len(load.records)} raw records: {len(load.ids)} distinct valid events "
        f"({load.real} real_events.jsonl originals, the rest re-signed copies of them) "
        f"x 2 relays, so half repeat an id; {partitions} partitions; filled "
        f"{'before starting' if fill_first else 'after the group of'} the workers; "
        f"Kafka at {base.kafka.bootstrap_servers}",
        flush=True,
    )
    limits = Limits.from_settings(base.streams)
    ceilings, ones, twos = [], [], []
    for number in range(1, rounds + 1):
        ceilings.append(ceiling(load, limits))
        ones.append(worker_run(base, load, 1, partitions, profile, fill_first))
        if two_workers:
            twos.append(worker_run(base, load, 2, partitions, None, fill_first))
        print(
            f"round {number}: ceiling {ceilings[-1].per_second:,.0f} rec/s; "
            + "; ".join(
                f"{n} worker{'s' * (n > 1)} {r.per_second:,.0f} rec/s "
                f"({r.seconds:.2f}s, of which {r.commit_tail_s:.2f}s final commit)"
                for n, r in [(1, ones[-1]), *[(2, two) for two in twos[-1:]]]
            ),
            flush=True,
        )
    top, one = _best(ceilings), _best(ones)
    ratio = one.per_second / top.per_second
    two = ""
    if twos:
        best_two = _best(twos).per_second
        two = f"; 2 workers {best_two:,.0f} rec/s, ratio {best_two / top.per_second:.2f}"
    print(
        f"best of {rounds}: ceiling {top.per_second:,.0f} rec/s; 1 worker {one.per_second:,.0f} "
        f"rec/s, ratio {ratio:.2f} (target >= {TARGET}){two}"
    )
    if profile is not None:
        pstats.Stats(str(profile)).sort_stats("cumulative").print_stats(30)
    return ratio


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000, help="raw records (even)")
    parser.add_argument("--rounds", type=int, default=3, help="ceiling + 1 worker + 2 workers")
    parser.add_argument("--partitions", type=int, default=6, help="partitions of every topic")
    parser.add_argument(
        "--profile", type=Path, help="run the one-worker runs under cProfile, written to this file"
    )
    parser.add_argument(
        "--fill-first",
        action="store_true",
        help="fill events.raw before starting the workers (a second worker then joins mid-stream)",
    )
    parser.add_argument(
        "--one-worker", action="store_true", help="measure one worker only (no two-worker runs)"
    )
    args = parser.parse_args()
    if args.records < 2 or args.rounds < 1 or args.partitions < 1:
        parser.error("--records must be at least 2, --rounds and --partitions at least 1")
    main(
        args.records,
        args.rounds,
        args.partitions,
        args.profile,
        args.fill_first,
        two_workers=not args.one_worker,
    )


if __name__ == "__main__":
    cli()
