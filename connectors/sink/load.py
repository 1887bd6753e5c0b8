"""Writes one batch of Kafka records in one transaction: rows, dead letters and offsets together.

Records are prepared (decoded and mapped) before any I/O; those that can never be stored become
dead letters. The rest are bulk loaded per topic. If PostgreSQL refuses the data, the batch is
written again record by record, each in a savepoint, and only the refused records become dead
letters: one poison record never blocks its partition nor costs the rest of its batch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from bigbrotr.errors import CodecError
from connectors.sink.offsets import Partition, claim, store
from connectors.sink.rejects import DeadLetter, RejectPublisher, message_time
from connectors.sink.writer import TopicWriter, Unwritable

log = logging.getLogger("bigbrotr.sink")

# PostgreSQL refuses the data itself (class 22 data exception, 23 integrity, 54 program limit,
# e.g. an index row too large), or the driver cannot encode it: retrying the same row is futile.
DATA_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.exceptions.ProgramLimitExceededError,
    UnicodeEncodeError,
)


@dataclass
class PreparedBatch:
    """A batch ready to write: items per topic writer, dead letters, and where it ends."""

    items: dict[str, list[tuple[Any, Any]]] = field(default_factory=dict)
    letters: list[DeadLetter] = field(default_factory=list)
    positions: dict[Partition, int] = field(default_factory=dict)
    records: int = 0


class BatchLoader:
    """`writers` by full topic name; `group` names the offsets in `sink_offsets`."""

    def __init__(
        self, writers: Mapping[str, TopicWriter[Any]], group: str, rejects: RejectPublisher
    ) -> None:
        self.writers = writers
        self.group = group
        self.rejects = rejects

    def prepare(self, messages: Sequence[Any]) -> PreparedBatch:
        batch = PreparedBatch(records=len(messages))
        for message in messages:
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            batch.positions[(topic, partition)] = offset + 1
            try:
                item = self.writers[topic].prepare(message.key(), message.value())
            except CodecError as exc:
                batch.letters.append(_letter(message, "bad_record", str(exc), None))
            except Unwritable as exc:
                batch.letters.append(_letter(message, exc.reason, exc.detail, exc.relay_url))
            else:
                batch.items.setdefault(topic, []).append((message, item))
        return batch

    async def write(
        self, conn: Any, batch: PreparedBatch, expected: Mapping[Partition, int | None]
    ) -> None:
        """Commit `batch` if the stored offsets are still `expected` (else `Fenced`)."""
        mine = {key: expected.get(key) for key in batch.positions}
        try:
            async with conn.transaction():
                await claim(conn, self.group, mine)
                for topic, pairs in batch.items.items():
                    await self.writers[topic].write(conn, [item for _, item in pairs])
                await self._finish(conn, batch, batch.letters)
        except DATA_ERRORS as exc:
            log.warning("PostgreSQL refused part of a batch (%s); writing it record by record", exc)
            await self._write_one_by_one(conn, batch, mine)
        self.rejects.committed()

    async def _write_one_by_one(
        self, conn: Any, batch: PreparedBatch, expected: Mapping[Partition, int | None]
    ) -> None:
        async with conn.transaction():
            await claim(conn, self.group, expected)
            letters = list(batch.letters)
            for topic, pairs in batch.items.items():
                writer = self.writers[topic]
                for message, item in pairs:
                    try:
                        async with conn.transaction():
                            await writer.write(conn, [item])
                    except DATA_ERRORS as exc:
                        detail = f"PostgreSQL refused it: {type(exc).__name__}: {exc}"
                        letters.append(_letter(message, "unwritable", detail, item.relay_url))
            await self._finish(conn, batch, letters)

    async def _finish(self, conn: Any, batch: PreparedBatch, letters: list[DeadLetter]) -> None:
        if letters:
            await self.rejects.publish(letters)
        await store(conn, self.group, batch.positions)


def _letter(message: Any, reason: str, detail: str, relay_url: str | None) -> DeadLetter:
    _, timestamp_ms = message.timestamp()
    return DeadLetter(
        topic=message.topic(),
        partition=message.partition(),
        offset=message.offset(),
        reason=reason,
        detail=detail,
        relay_url=relay_url,
        seen_at=message_time(timestamp_ms),
        original=message.value() or b"",
    )
