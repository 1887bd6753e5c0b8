"""One soak run on the dev stack: fresh topics and database, two LocalRelays receiving `rate` new
events a second (each to both), the pipeline archiving them live, the memory of each process
sampled every `interval_s`.

The synchronizer renews its live subscriptions every `live_session_s` (its own default is 900 s,
half a 30-minute soak): each renewal reconciles the session's window with the archive (NIP-77)
and fetches what it lacks, so a soak must see several renewals to tell a step that repeats with
them from a warm-up that ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bench.e2e.latency import CommitLatency, add_commit_order
from bench.e2e.memory import rss_mib
from bench.e2e.pipeline import COMPONENTS, Pipeline, delete_topics, pipeline_for, run_changes
from bench.e2e.relays import announce, publish_live, run_relays
from bench.soak.audit import Losses, find_losses
from bench.soak.logs import LogReport, read_log
from bench.soak.verdict import Trend, trend
from bigbrotr.config import load_settings
from bigbrotr.demo.relays import RunningRelay
from bigbrotr.devstack.process import free_port
from bigbrotr.migrate import migrate
from bigbrotr.topics import create_topics
from connectors.sink.databases import create_database, drop_database
from streams.table_memory import MIB
from tests.support.metrics import scrape

SETTLE_S = 120.0
TABLE_SLACK = 1.1
TABLE_MEMORY = "bigbrotr_worker_table_memory_bytes"


@dataclass
class SoakResult:
    minutes: float
    rate: float
    published_ids: dict[str, float] = field(default_factory=dict)  # id -> when published
    started: float = 0.0  # wall clock
    losses: Losses = field(default_factory=Losses)
    p50_s: float = float("nan")
    p99_s: float = float("nan")
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    restarted: list[str] = field(default_factory=list)  # components whose process changed
    table_budget_mib: float = 0.0  # the worker's `streams.table_memory_mib`
    tables: dict[float, float] = field(default_factory=dict)  # sample time -> the tables' MiB
    logs: LogReport = field(default_factory=LogReport)

    @property
    def trends(self) -> dict[str, Trend | None]:
        return {name: trend(points) for name, points in self.series.items()}

    @property
    def tables_within_budget(self) -> bool:
        """RocksDB's caps are soft (the cache may pass its capacity a little, memtables pass
        theirs until their flush ends): within `TABLE_SLACK` of the budget counts as bounded."""
        return max(self.tables.values(), default=0.0) <= self.table_budget_mib * TABLE_SLACK

    @property
    def ok(self) -> bool:
        flat = all(found is None or found.flat for found in self.trends.values())
        bounded = self.tables_within_budget
        quiet = self.logs.errors == 0
        return flat and bounded and quiet and self.stored == self.published and not self.restarted

    @property
    def stored(self) -> int:
        return self.losses.stored

    @property
    def published(self) -> int:
        return len(self.published_ids)


async def run_soak(
    minutes: float, rate: float, interval_s: float, live_session_s: float
) -> SoakResult:
    base = load_settings()
    result = SoakResult(minutes, rate)
    dsn = await create_database(base.database.dsn(), f"bench_soak_{uuid.uuid4().hex[:8]}")
    with (
        tempfile.TemporaryDirectory(prefix="bigbrotr-soak-") as tmp,
        run_relays(Path(tmp), 2) as relays,
    ):
        changes = run_changes(
            base,
            label="soak",
            database_url=dsn,
            allow=[relay.host_port for relay in relays],
            workdir=Path(tmp),
            partitions=4,
        )
        changes["sync"]["live_session_s"] = live_session_s
        changes["metrics"]["ports"]["worker"] = free_port()
        pipeline = pipeline_for(base, changes, Path(tmp) / "pipeline.log")
        result.table_budget_mib = pipeline.settings.streams.table_memory_mib
        try:
            await migrate(dsn)
            await add_commit_order(dsn)
            await asyncio.to_thread(create_topics, pipeline.settings.kafka)
            await _soak(pipeline, relays[:2], result, interval_s)
        except BaseException:
            print(f"pipeline log (tail):\n{pipeline.log.read_text()[-4000:]}")
            raise
        finally:
            await asyncio.to_thread(delete_topics, pipeline.settings)
            await drop_database(dsn)
    return result


async def _soak(
    pipeline: Pipeline, relays: list[RunningRelay], result: SoakResult, interval_s: float
) -> None:
    latency = CommitLatency(pipeline.settings.database.dsn())
    async with pipeline.running():
        await pipeline.wait_ready()
        steady_from = pipeline.log.stat().st_size
        first = dict(pipeline.pids)
        await announce(pipeline.settings, relays)
        poller = asyncio.create_task(latency.follow(1.0))
        stop = asyncio.Event()
        publisher = asyncio.create_task(
            publish_live(relays, result.rate, "soak", result.published_ids, stop)
        )
        started = time.monotonic()
        result.started = time.time()
        print(
            "   min  " + "  ".join(f"{name:>10}" for name in COMPONENTS) + "  w.tables   stored",
            flush=True,
        )
        try:
            while time.monotonic() - started < result.minutes * 60:
                await asyncio.sleep(interval_s)
                await _sample(pipeline, result, time.monotonic() - started, latency.rows)
        finally:
            stop.set()
            await publisher
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:
            if latency.rows >= result.published:
                break
            await asyncio.sleep(1.0)
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poller
        result.restarted = sorted(name for name, pid in pipeline.pids.items() if first[name] != pid)
        result.logs = read_log(pipeline.log, steady_from, pipeline.log.stat().st_size)
    result.losses = await find_losses(
        pipeline.settings, result.published_ids, [relay.url for relay in relays]
    )
    result.p50_s, result.p99_s = latency.percentile(0.5), latency.percentile(0.99)


async def _sample(pipeline: Pipeline, result: SoakResult, at: float, stored: int) -> None:
    """Each process's RSS, and the worker's table memory (scraped first: the RSS read next then
    holds at least what the tables held)."""
    port = pipeline.settings.metrics.ports["worker"]
    tables = await asyncio.to_thread(scrape, port)
    if tables is not None:
        result.tables[at] = tables.value(TABLE_MEMORY) / MIB
    row = []
    for name in COMPONENTS:
        pid = pipeline.pids.get(name)
        mib = rss_mib(pid) if pid is not None else None
        if mib is not None:
            result.series.setdefault(name, []).append((at, mib))
        row.append(f"{mib:7.1f} MiB" if mib is not None else "      gone")
    row.append(f"{result.tables[at]:6.1f} MiB" if at in result.tables else "         -")
    print(f"{at / 60:6.1f}  " + "  ".join(row) + f"  {stored:7,}", flush=True)
