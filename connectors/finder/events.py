"""Reading the archived events the finder has not seen yet, batch by batch, from `events`.

Its position is committed under the consumer group `<prefix>finder` only after the caller has
recorded what a batch yielded, so a crash re-reads a batch rather than skipping one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bigbrotr.config import Settings
from bigbrotr.observability.metrics import RECORDS_IN
from connectors.finder.compacted import topic_partitions

_BATCH_RECORDS = 2000
_BATCH_TIMEOUT_MS = 1000


class EventsReader:
    """`async with EventsReader(settings) as reader:` then `async for batch in reader.new():`."""

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.kafka.topic("events")
        self._bootstrap = settings.kafka.bootstrap_servers
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka.bootstrap_servers,
            group_id=f"{settings.kafka.topic_prefix}finder",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        self._partitions: list[TopicPartition] = []

    async def __aenter__(self) -> EventsReader:
        self._partitions = await topic_partitions(self._bootstrap, self.topic)
        await self._consumer.start()
        self._consumer.assign(self._partitions)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._consumer.stop()

    async def new(self) -> AsyncIterator[list[Any]]:
        """Batches of records up to the end the topic has now; commit each with `commit`."""
        ends = await self._consumer.end_offsets(self._partitions)
        remaining = [tp for tp in self._partitions if await self._behind(tp, ends[tp])]
        while remaining:
            batches = await self._consumer.getmany(
                *remaining, timeout_ms=_BATCH_TIMEOUT_MS, max_records=_BATCH_RECORDS
            )
            records = [message for messages in batches.values() for message in messages]
            if records:
                RECORDS_IN.labels(self.topic).inc(len(records))
                yield records
            remaining = [tp for tp in remaining if await self._behind(tp, ends[tp])]

    async def commit(self) -> None:
        """Remember that everything read so far is handled."""
        await self._consumer.commit()

    async def _behind(self, tp: TopicPartition, end: int) -> bool:
        return bool(await self._consumer.position(tp) < end)
