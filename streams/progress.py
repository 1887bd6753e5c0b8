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

import threading
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


class HoleCheck:
    """Whether offsets hold committed records, asked through one consumer kept for the purpose:
    a new consumer per check pays a connection and a metadata round trip (10-20 ms measured,
    against 3-5 ms), and every transaction marker of an input partition is such a hole."""

    def __init__(self, bootstrap_servers: str) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._consumer: Consumer | None = None
        self._lock = threading.Lock()

    def is_empty(self, tp: TP, start: int, end: int) -> bool:
        """Whether offsets `start..end-1` of `tp` hold no committed record. Blocking.

        Unsure (the broker did not answer in time) counts as not empty: seeking back is safe.
        """
        with self._lock:
            consumer = self._consumer = self._consumer or self._new_consumer()
            consumer.assign([TopicPartition(tp.topic, tp.partition, start)])
            try:
                return self._first_answer(consumer, tp, start, end)
            finally:
                consumer.unassign()

    def close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None

    def _new_consumer(self) -> Consumer:
        return Consumer(
            {
                "bootstrap.servers": self._bootstrap_servers,
                "group.id": "bigbrotr-hole-check",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                # A hole usually ends the partition for now: answer at once, not after the
                # broker's default wait of 500 ms for more data.
                "fetch.wait.max.ms": 10,
            }
        )

    @staticmethod
    def _first_answer(consumer: Consumer, tp: TP, start: int, end: int) -> bool:
        deadline = time.monotonic() + _HOLE_CHECK_TIMEOUT_S
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            # Only an answer about this assignment counts, not one left from an earlier check.
            if message is None or (message.topic(), message.partition()) != tp:
                continue
            found = message.offset()
            error = message.error()
            if error is None:
                if found is not None and found >= start:
                    return found >= end
            elif error.code() == KafkaError._PARTITION_EOF:
                return True
        return False
