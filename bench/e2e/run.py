"""One end-to-end run: relays filled with the corpus, archived by the real pipeline into a fresh
database on fresh topics, with every figure of the report measured on the way."""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench.e2e.ceilings import Ceiling, copy_ceiling, signature_ceiling
from bench.e2e.corpus import Corpus, load_corpus
from bench.e2e.latency import CommitLatency, add_commit_order
from bench.e2e.memory import PeakMemory
from bench.e2e.pipeline import Pipeline, delete_topics, pipeline_for, run_changes
from bench.e2e.readback import read_topic
from bench.e2e.relays import announce, fill_relays, run_relays
from bench.e2e.stages import StageRate, StageSampler
from bigbrotr.codec import Codec
from bigbrotr.config import Settings, load_settings
from bigbrotr.demo.relays import RunningRelay
from bigbrotr.migrate import migrate
from bigbrotr.topics import create_topics
from connectors.sink.databases import create_database, drop_database

SAMPLE_S = 1.0
LATENCY_POLL_S = 0.25


@dataclass(frozen=True)
class E2eResult:
    events: int
    sightings: int
    raw_records: int
    rejects: Counter[str]
    fill_s: float
    end_to_end_s: float
    stages: dict[str, StageRate | None]
    p50_s: float
    p99_s: float
    peak_mib: dict[str, float]
    signatures: Ceiling
    copy: Ceiling
    complete: bool


async def count_rows(dsn: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM events) AS events,"
            " (SELECT count(*) FROM sightings) AS sightings"
        )
    finally:
        await conn.close()
    return int(row["events"]), int(row["sightings"])


async def rejected(settings: Settings) -> Counter[str]:
    """Distinct rejected records (reason, relay, original bytes) by reason."""
    codec = Codec()
    seen = {
        (r["reason"], r["relay_url"], r["original"])
        for r in (codec.decode("Reject", m.value) for m in await read_topic(settings, "rejects"))
    }
    return Counter(reason for reason, _, _ in seen)


async def run_e2e(
    events: int, partitions: int, timeout_s: float, keep: bool, negentropy: bool
) -> E2eResult:
    base = load_settings()
    corpus = load_corpus(events, base.dev.state_dir / "bench")
    tag = uuid.uuid4().hex[:8]
    server = base.database.dsn()
    with (
        tempfile.TemporaryDirectory(prefix="bigbrotr-e2e-") as tmp,
        run_relays(Path(tmp), len(corpus.relay_texts)) as relays,
    ):
        workdir = Path(tmp)
        fill_s = await fill_relays(relays, corpus)
        print(f"relays: {', '.join(r.url for r in relays)} filled in {fill_s:.1f} s", flush=True)
        dsn = await create_database(server, f"bench_e2e_{tag}")
        changes = run_changes(
            base,
            label="e2e",
            database_url=dsn,
            allow=[relay.host_port for relay in relays],
            workdir=workdir,
            partitions=partitions,
            negentropy=negentropy,
        )
        pipeline = pipeline_for(base, changes, workdir / "pipeline.log")
        settings = pipeline.settings
        try:
            await migrate(dsn)
            await add_commit_order(dsn)
            await asyncio.to_thread(create_topics, settings.kafka)
            watched = await _archive(pipeline, relays, corpus, timeout_s)
            raw_records = len(await read_topic(settings, "events.raw"))
            rejects = await rejected(settings)
            stored_events, stored_sightings = await count_rows(dsn)
        except BaseException:
            print(f"pipeline log: {pipeline.log}\n{pipeline.log.read_text()[-4000:]}")
            raise
        finally:
            if not keep:
                await asyncio.to_thread(delete_topics, settings)
                await drop_database(dsn)
    print("ceilings (the pipeline has stopped) ...", flush=True)
    signatures = signature_ceiling(corpus, base)
    copy_dsn = await create_database(server, f"bench_e2e_copy_{tag}")
    try:
        copy = await copy_ceiling(corpus, copy_dsn, base.sink.batch_size)
    finally:
        await drop_database(copy_dsn)
    sampler, latency, memory, end_s = watched
    sink_offsets = sampler.samples[-1].offsets["sink"] if sampler.samples else 0
    expected_rejects = Counter(reason for reason, _ in corpus.invalid)
    return E2eResult(
        events=stored_events,
        sightings=stored_sightings,
        raw_records=raw_records,
        rejects=rejects,
        fill_s=fill_s,
        end_to_end_s=end_s,
        stages=_stages(sampler, corpus, sink_offsets),
        p50_s=latency.percentile(0.50),
        p99_s=latency.percentile(0.99),
        peak_mib=memory.peaks,
        signatures=signatures,
        copy=copy,
        complete=stored_events == len(corpus.texts)
        and stored_sightings == corpus.sightings
        and rejects == expected_rejects,
    )


def _stages(
    sampler: StageSampler, corpus: Corpus, sink_offsets: int
) -> dict[str, StageRate | None]:
    """Each stage up to what the corpus needs of it: a raw record per (event, relay) pair and
    invalid event; for the sink, the offsets it had stored when the archive was complete."""
    raw = corpus.sightings + len(corpus.invalid)
    targets = {"sync": raw, "worker": raw, "sink": sink_offsets}
    return {stage: sampler.rate(stage, target) for stage, target in targets.items()}


async def _archive(
    pipeline: Pipeline, relays: Sequence[RunningRelay], corpus: Corpus, timeout_s: float
) -> tuple[StageSampler, CommitLatency, PeakMemory, float]:
    """Announce the relays, then sample until the database holds the whole corpus."""
    settings = pipeline.settings
    dsn = settings.database.dsn()
    latency = CommitLatency(dsn)
    memory = PeakMemory()
    async with pipeline.running():
        await pipeline.wait_ready()
        sampler = StageSampler(settings)
        await announce(settings, relays)
        poller = asyncio.create_task(latency.follow(LATENCY_POLL_S))
        try:
            end_s = await _until_complete(pipeline, sampler, latency, memory, corpus, timeout_s)
        finally:
            poller.cancel()
            memory.sample(pipeline.pids)
    return sampler, latency, memory, end_s


async def _until_complete(
    pipeline: Pipeline,
    sampler: StageSampler,
    latency: CommitLatency,
    memory: PeakMemory,
    corpus: Corpus,
    timeout_s: float,
) -> float:
    dsn = pipeline.settings.database.dsn()
    printed = 0.0
    while True:
        memory.sample(pipeline.pids)
        sample = await sampler.sample()
        elapsed = time.monotonic() - sampler.started
        if latency.rows >= len(corpus.texts):
            _, sightings = await count_rows(dsn)
            if sightings >= corpus.sightings:
                return elapsed
        if sample is not None and elapsed - printed >= 10:
            printed = elapsed
            print(
                f"  {elapsed:6.0f} s: events.raw {sample.offsets['sync']:,}, worker "
                f"{sample.offsets['worker']:,}, sink {sample.offsets['sink']:,} offsets; "
                f"{latency.rows:,} of {len(corpus.texts):,} events stored",
                flush=True,
            )
        if elapsed > timeout_s:
            raise SystemExit(f"the archive was not complete after {timeout_s:.0f} s")
        await asyncio.sleep(SAMPLE_S)
