"""The offsets the worker commits: how far each partition was processed without a hole.

Faust derives committed offsets from its own read, ack and gap bookkeeping, and around restarts
and rebalances that bookkeeping skips records (they are never processed yet their offsets are
committed) or stalls a partition for good. So the worker keeps its own account: after every seek
to the committed offsets, each partition must be processed from there one offset after the other.
A record past the next expected offset is processed only when the offsets in between hold no
committed record (transaction markers and aborted records do leave such holes); otherwise the
partition is sought back to the expected offset.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from enum import Enum

from confluent_kafka import Consumer, KafkaError, TopicPartition
from faust.types import TP

_HOLE_CHECK_TIMEOUT_S = 10.0


class Admission(Enum):
    PROCESS = "process"
    SKIP = "skip"
    CHECK_HOLE = "check_hole"


class Progress:
    """Next offset to admit, and next offset processed, per partition from the committed offsets.

    A record is admitted when a batch takes it and done when the batch's output was queued; only
    done records commit. A batch admits several records of a partition before any is done.
    """

    def __init__(self) -> None:
        self._admitted: dict[TP, int] = {}
        self._done: dict[TP, int] = {}
        self._rewinding: set[TP] = set()
        self.generation = 0

    def restart(self, starts: Mapping[TP, int]) -> None:
        """The consumer was sought to these offsets: processing starts over from them, and
        records fetched before (an older `generation`) are read again."""
        self._admitted = dict(starts)
        self._done = dict(starts)
        self._rewinding.clear()
        self.generation += 1

    def admit(self, tp: TP, offset: int) -> Admission:
        expected = self._admitted.get(tp)
        if expected is None or offset == expected:
            self._rewinding.discard(tp)
            self._admitted[tp] = offset + 1
            return Admission.PROCESS
        if offset < expected or tp in self._rewinding:
            return Admission.SKIP
        return Admission.CHECK_HOLE

    def expected(self, tp: TP) -> int | None:
        return self._admitted.get(tp)

    def hole_is_empty(self, tp: TP, offset: int) -> None:
        """Nothing committed lies before `offset`: the record at `offset` is admitted."""
        self._admitted[tp] = offset + 1
        self._rewinding.discard(tp)

    def rewinding(self, tp: TP) -> None:
        """The partition was sought back; what arrives before the expected offset is skipped."""
        self._rewinding.add(tp)

    def done(self, tp: TP, offset: int) -> None:
        self._done[tp] = offset + 1

    def committable(self, committed: Mapping[TP, int | None]) -> dict[TP, int]:
        """Offsets that moved past what was committed last."""
        return {
            tp: offset
            for tp, offset in self._done.items()
            if (done := committed.get(tp)) is None or offset > done
        }


def hole_is_empty(bootstrap_servers: str, tp: TP, start: int, end: int) -> bool:
    """Whether offsets `start..end-1` of `tp` hold no committed record. Blocking.

    Unsure (the broker did not answer in time) counts as not empty: seeking back is safe.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": "bigbrotr-hole-check",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        consumer.assign([TopicPartition(tp.topic, tp.partition, start)])
        deadline = time.monotonic() + _HOLE_CHECK_TIMEOUT_S
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is None:
                found = message.offset()
                return found is not None and found >= end
            if error.code() == KafkaError._PARTITION_EOF:
                return True
        return False
    finally:
        consumer.close()
