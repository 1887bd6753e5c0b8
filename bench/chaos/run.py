"""One chaos run: the end-to-end pipeline on a private Kafka and PostgreSQL, with processes killed
and servers restarted while it archives, then audited (`bench.chaos.audit`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from confluent_kafka import KafkaException

from bench.chaos.audit import Audit, audit_topics, replay_and_verify
from bench.chaos.stack import PrivateStack, private_stack
from bench.e2e.corpus import Corpus, load_corpus
from bench.e2e.pipeline import Pipeline, pipeline_for, run_changes
from bench.e2e.relays import announce, fill_relays, publish_live, run_relays
from bench.e2e.run import count_rows
from bigbrotr.config import Settings, load_settings
from bigbrotr.demo.archive import records_behind, sink_lag
from bigbrotr.demo.relays import RunningRelay
from bigbrotr.demo.run import as_environment
from bigbrotr.errors import BigBrotrError
from bigbrotr.migrate import migrate
from bigbrotr.observability.offsets import BrokerOffsets
from bigbrotr.topics import create_topics
from connectors.sink.databases import create_database

LIVE_RATE = 10.0  # new events a second to both relays while the chaos goes on
ACTIONS = ("kill sync", "kill worker", "kill sink", "restart kafka", "restart postgres")


@dataclass
class ChaosReport:
    seed: int
    actions: list[tuple[float, str]] = field(default_factory=list)
    live_ids: dict[str, float] = field(default_factory=dict)
    settled_s: float = 0.0
    audit: Audit = field(default_factory=Audit)

    @property
    def ok(self) -> bool:
        return self.audit.ok


def schedule(count: int, rng: random.Random, kinds: Sequence[str] = ACTIONS) -> list[str]:
    """`count` actions (at least one of each kind), each round of kinds in a random order."""
    actions: list[str] = []
    while len(actions) < max(count, len(kinds)):
        actions += rng.sample(list(kinds), len(kinds))
    return actions[: max(count, len(kinds))]


@dataclass(frozen=True)
class Timing:
    duration_s: float  # of the chaos
    interval_s: float  # between two actions
    settle_s: float  # at most, for the pipeline to finish after the chaos
    kinds: tuple[str, ...] = ACTIONS  # the actions drawn from


async def run_chaos(
    *,
    events: int,
    duration_s: float,
    interval_s: float,
    settle_s: float,
    seed: int,
    workdir: Path,
    kinds: Sequence[str] = ACTIONS,
) -> ChaosReport:
    timing = Timing(duration_s, interval_s, settle_s, tuple(kinds))
    base = load_settings()
    corpus = load_corpus(events, base.dev.state_dir / "bench")
    report = ChaosReport(seed)
    async with private_stack(workdir / "stack", base.dev) as stack:
        print(f"private stack: Kafka {stack.bootstrap}, {stack.postgres.url}", flush=True)
        with run_relays(workdir / "relays", len(corpus.relay_texts)) as relays:
            await fill_relays(relays, corpus)
            await _under_chaos(stack, relays, corpus, report, workdir, timing)
    return report


async def _under_chaos(
    stack: PrivateStack,
    relays: list[RunningRelay],
    corpus: Corpus,
    report: ChaosReport,
    workdir: Path,
    timing: Timing,
) -> None:
    """The pipeline archives the relays while the chaos goes on; then the audit."""
    base = load_settings()
    dsn = await create_database(stack.postgres.url, "chaos")
    changes = run_changes(
        base,
        label="chaos",
        database_url=dsn,
        allow=[relay.host_port for relay in relays],
        workdir=workdir,
        partitions=3,
        bootstrap=stack.bootstrap,
    )
    changes["sink"] = {"session_timeout_s": 6, "retry_max_s": 2}
    changes["streams"]["session_timeout_s"] = 6
    pipeline = pipeline_for(base, changes, workdir / "pipeline.log")
    settings = pipeline.settings
    await migrate(dsn)
    await asyncio.to_thread(create_topics, settings.kafka)
    async with pipeline.running():
        await pipeline.wait_ready()
        await announce(settings, relays)
        stop = asyncio.Event()
        live = asyncio.create_task(
            publish_live(relays[:2], LIVE_RATE, "chaos", report.live_ids, stop)
        )
        try:
            await _chaos(pipeline, stack, timing, report)
        finally:
            stop.set()
            await live
        started = time.monotonic()
        await pipeline.wait_running()
        pairs = corpus.sightings + 2 * len(report.live_ids)
        events = len(corpus.texts) + len(report.live_ids)
        await _settle(settings, events, pairs, timing.settle_s)
        report.settled_s = time.monotonic() - started
    print(f"settled {report.settled_s:.0f} s after the chaos; auditing ...", flush=True)
    expected_ids = {json.loads(text)["id"] for text in corpus.texts} | report.live_ids.keys()
    invalid = {json.loads(text)["id"] for _, text in corpus.invalid}
    report.audit = await audit_topics(settings, invalid, expected_ids, pairs)
    report.audit.problems += await asyncio.to_thread(
        replay_and_verify, as_environment(changes), dsn, "chaos_replay", workdir
    )


async def _chaos(
    pipeline: Pipeline,
    stack: PrivateStack,
    timing: Timing,
    report: ChaosReport,
) -> None:
    rng = random.Random(report.seed)
    duration_s = timing.duration_s
    actions = schedule(int(duration_s / timing.interval_s), rng, timing.kinds)
    started = time.monotonic()
    for number, action in enumerate(actions):
        wait = started + (number + 1) * duration_s / (len(actions) + 1) - time.monotonic()
        await asyncio.sleep(max(wait, 0.0))
        await pipeline.wait_running()
        at = time.monotonic() - started
        await _act(action, pipeline, stack)
        report.actions.append((at, action))
        print(f"  {at:5.1f} s: {action} ({time.monotonic() - started - at:.1f} s)", flush=True)


async def _act(action: str, pipeline: Pipeline, stack: PrivateStack) -> None:
    verb, target = action.split()
    if verb == "kill":
        os.kill(pipeline.pids[target], signal.SIGKILL)
        return
    restart: Callable[[], None] = (
        stack.restart_kafka if target == "kafka" else stack.restart_postgres
    )
    await asyncio.to_thread(restart)


async def _settle(settings: Settings, events: int, pairs: int, timeout_s: float) -> None:
    """Until the database holds every event and sighting and nothing is left to read by the
    worker (on any of its topics, its internal aggregate increments too) or by the sink, or
    `timeout_s` passed."""
    dsn = settings.database.dsn()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, asyncpg.PostgresError, BigBrotrError, KafkaException):
            if await count_rows(dsn) == (events, pairs) and not await _behind(settings, dsn):
                return
        await asyncio.sleep(1.0)
    print(f"not settled within {timeout_s:.0f} s", flush=True)


async def _behind(settings: Settings, dsn: str) -> int:
    """Records the worker and the sink have still to read."""
    conn = await asyncpg.connect(dsn)
    try:
        sink = sum((await sink_lag(settings, conn)).values())
    finally:
        await conn.close()
    return sink + sum((await asyncio.to_thread(_worker_behind, settings)).values())


def _worker_behind(settings: Settings) -> dict[str, int]:
    group = settings.kafka.topic_prefix + settings.streams.app_id
    committed = BrokerOffsets(settings.kafka.bootstrap_servers).committed(group)
    return records_behind(settings, sorted({topic for topic, _ in committed}), committed)
