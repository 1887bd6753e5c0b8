"""How far each stage has got, sampled over time: the synchronizer by the end offsets of
`events.raw`, the worker by the offsets its group committed on `events.raw` (it commits them in
the transaction of its outputs), the sink by the offsets it stored with its rows. A stage's time
runs from its first progress to reaching what the corpus needs of it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import asyncpg

from bigbrotr.config import Settings
from bigbrotr.errors import BigBrotrError
from bigbrotr.observability.offsets import BrokerOffsets

STAGES = ("sync", "worker", "sink")


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the run's start
    offsets: dict[str, int]  # stage -> offsets passed so far


@dataclass(frozen=True)
class StageRate:
    offsets: int
    first_s: float  # since the run's start
    done_s: float

    @property
    def seconds(self) -> float:
        return max(self.done_s - self.first_s, 1e-9)


@dataclass
class StageSampler:
    settings: Settings
    started: float = field(default_factory=time.monotonic)
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._broker = BrokerOffsets(self.settings.kafka.bootstrap_servers)
        self._raw = self.settings.kafka.topic("events.raw")
        self._worker_group = self.settings.kafka.topic_prefix + self.settings.streams.app_id
        self._sink_group = self.settings.kafka.topic_prefix + self.settings.sink.group_id
        self._sink_topics = [self.settings.kafka.topic(n) for n in ("events", "sightings")]

    async def sample(self) -> Sample | None:
        """One sample; None while the broker or PostgreSQL does not answer."""
        try:
            raw, worker = await asyncio.to_thread(self._kafka_side)
            sink = await self._sink_side()
        except (BigBrotrError, OSError, TimeoutError, asyncpg.PostgresError):
            return None
        found = Sample(
            time.monotonic() - self.started, {"sync": raw, "worker": worker, "sink": sink}
        )
        self.samples.append(found)
        return found

    def _kafka_side(self) -> tuple[int, int]:
        partitions = self._broker.partitions([self._raw])
        raw = sum(self._broker.ends(partitions).values())
        worker = sum(
            offset
            for (topic, _), offset in self._broker.committed(self._worker_group).items()
            if topic == self._raw
        )
        return raw, worker

    async def _sink_side(self) -> int:
        conn = await asyncpg.connect(self.settings.database.dsn(), timeout=5)
        try:
            stored = await conn.fetchval(
                "SELECT coalesce(sum(next_offset), 0) FROM sink_offsets "
                "WHERE consumer_group = $1 AND topic = ANY($2::text[])",
                self._sink_group,
                self._sink_topics,
            )
        finally:
            await conn.close()
        return int(stored)

    def rate(self, stage: str, target: int) -> StageRate | None:
        """From the last sample before the stage moved to the first at `target` offsets (a
        straggler past it, an event pulled twice, does not stretch the stage)."""
        moving = [s for s in self.samples if s.offsets[stage] > 0]
        done = next((s for s in moving if s.offsets[stage] >= target), None)
        if done is None:
            return None
        before = [s for s in self.samples if s.at < moving[0].at]
        return StageRate(done.offsets[stage], before[-1].at if before else 0.0, done.at)
