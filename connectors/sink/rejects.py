"""Dead letters of the sink: records it can never store go to `rejects`, bytes intact.

They are published, and the broker has confirmed them, before the transaction that moves the
offsets past them commits, so none is lost; a crash between the two publishes one again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bigbrotr.codec import Codec
from bigbrotr.observability.metrics import REJECTS
from bigbrotr.producer import Producer

STAGE = "sink"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    reason: str
    detail: str
    relay_url: str | None
    seen_at: datetime
    original: bytes


def reject_record(letter: DeadLetter) -> dict[str, Any]:
    return {
        "reason": letter.reason,
        "detail": f"{letter.topic}[{letter.partition}]@{letter.offset}: {letter.detail}",
        "stage": STAGE,
        "relay_url": letter.relay_url,
        "seen_at": letter.seen_at,
        "source": f"topic:{letter.topic}",
        "original": letter.original,
    }


def message_time(timestamp_ms: int) -> datetime:
    return datetime.fromtimestamp(max(timestamp_ms, 0) / 1000, UTC)


class RejectPublisher:
    """Publishes each dead letter once per process (a retried batch does not repeat it).

    Without a producer letters are only counted: verification's scratch replay must not add
    dead letters to the topics it verifies.
    """

    def __init__(self, producer: Producer | None, codec: Codec, topic: str) -> None:
        self._producer = producer
        self._codec = codec
        self._topic = topic
        self._sent: set[tuple[str, int, int]] = set()
        self.published = 0

    async def publish(self, letters: list[DeadLetter]) -> None:
        pending = []
        for letter in letters:
            where = (letter.topic, letter.partition, letter.offset)
            if where in self._sent:
                continue
            if self._producer is None:
                self._sent.add(where)
                self.published += 1
                continue
            key = letter.relay_url.encode() if letter.relay_url else None
            value = self._codec.encode("Reject", reject_record(letter))
            sent = await self._producer.send(self._topic, value, key=key)
            pending.append((where, letter.reason, sent))
        for where, reason, delivered in pending:
            await delivered
            self._sent.add(where)
            self.published += 1
            REJECTS.labels(STAGE, reason).inc()

    def committed(self) -> None:
        """The batch whose letters were sent is committed: they can no longer be retried."""
        self._sent.clear()
