"""Reads a topic from its start in the background, for whoever watches records arrive."""

from __future__ import annotations

import asyncio
import contextlib
import time
from types import TracebackType
from typing import Self

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from bigbrotr.config import Settings
from bigbrotr.errors import TopicError


class TopicTail:
    """`async with` a subclass: every record of the topic, oldest first, goes to `take` with the
    monotonic time its batch arrived, until the block ends."""

    def __init__(self, settings: Settings, name: str, *, read_committed: bool = False) -> None:
        self._topic = settings.kafka.topic(name)
        self._consumer = AIOKafkaConsumer(
            self._topic,
            bootstrap_servers=settings.kafka.bootstrap_servers,
            group_id=None,
            isolation_level="read_committed" if read_committed else "read_uncommitted",
        )
        self._task: asyncio.Task[None] | None = None

    def take(self, message: ConsumerRecord[bytes, bytes], arrived: float) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self._consumer.start()
        partitions = self._consumer.partitions_for_topic(self._topic) or set()
        if not partitions:
            await self._consumer.stop()
            raise TopicError(f"{self._topic} does not exist; run `bigbrotr topics create`")
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
                    self.take(message, arrived)
