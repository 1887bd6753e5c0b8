"""Reads `events.raw` in the background, so a test can see what arrived and when."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from aiokafka import AIOKafkaConsumer, TopicPartition

from bigbrotr.codec import Codec
from bigbrotr.config import Settings


@dataclass(frozen=True, slots=True)
class RawRecord:
    event_id: str
    relay_url: str | None
    source: str
    arrived: float


class RawTail:
    """`async with RawTail(settings) as tail:` collects every record of `events.raw`."""

    def __init__(self, settings: Settings) -> None:
        self._topic = settings.kafka.topic("events.raw")
        self._consumer = AIOKafkaConsumer(
            self._topic, bootstrap_servers=settings.kafka.bootstrap_servers, group_id=None
        )
        self._codec = Codec()
        self.records: list[RawRecord] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self._consumer.start()
        partitions = self._consumer.partitions_for_topic(self._topic) or set()
        if not partitions:
            await self._consumer.stop()
            raise AssertionError(f"{self._topic} does not exist")
        assigned = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        self._consumer.unsubscribe()
        self._consumer.assign(assigned)
        await self._consumer.seek_to_beginning(*assigned)
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=100)
            arrived = time.monotonic()
            for messages in batches.values():
                for message in messages:
                    value = self._codec.decode("RawEvent", message.value)
                    event_id = str(json.loads(value["raw"])["id"])
                    self.records.append(
                        RawRecord(event_id, value["relay_url"], value["source"], arrived)
                    )

    def ids(self, relay_url: str | None = None, source: str | None = None) -> set[str]:
        return {
            record.event_id
            for record in self.records
            if (relay_url is None or record.relay_url == relay_url)
            and (source is None or record.source == source)
        }

    def arrival(self, event_id: str) -> float | None:
        return next((r.arrived for r in self.records if r.event_id == event_id), None)
