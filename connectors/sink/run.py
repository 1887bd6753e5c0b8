"""The sink's run loop: collect a batch (by size or time), write it, repeat until told to stop.

Reading and writing take turns, so a rebalance (which happens inside a read) never meets a batch
half written. A batch collected before a rebalance is dropped: the partitions are read again from
the offsets stored with the rows. On `stop()` the batch in hand is finished within the shutdown
timeout or, past it, cancelled, which rolls its transaction back; either way the stored offsets
match the rows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from bigbrotr.observability import tracing
from bigbrotr.observability.metrics import RECORDS_IN, SINK_BATCH_RECORDS, SINK_BATCH_SECONDS
from connectors.sink.database import Database
from connectors.sink.load import BatchLoader, PreparedBatch
from connectors.sink.offsets import Fenced, load_offsets
from connectors.sink.source import Source

log = logging.getLogger("bigbrotr.sink")

POLL_S = 0.2
BATCH_SIZE = "messaging.batch.message_count"


@dataclass
class Totals:
    records: int = 0
    batches: int = 0
    rejected: int = 0


class SinkLoop:
    """`await loop.run(done)` returns when `done()` holds after a batch, or after `stop()`."""

    def __init__(
        self,
        source: Source,
        database: Database,
        loader: BatchLoader,
        *,
        topics: list[str],
        batch_size: int,
        batch_max_wait_s: float,
        shutdown_timeout_s: float,
        on_batch: Callable[[PreparedBatch], None] | None = None,
    ) -> None:
        self.source = source
        self.database = database
        self.loader = loader
        self.topics = topics
        self.batch_size = batch_size
        self.batch_max_wait_s = batch_max_wait_s
        self.shutdown_timeout_s = shutdown_timeout_s
        self.on_batch = on_batch
        self.totals = Totals()
        self._stopping = asyncio.Event()
        self._stop_deadline: float | None = None

    def stop(self) -> None:
        if not self._stopping.is_set():
            log.info("stopping: finishing the batch in hand within %.0f s", self.shutdown_timeout_s)
            self._stop_deadline = time.monotonic() + self.shutdown_timeout_s
            self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(
        self, done: Callable[[], bool] | None = None, at_end: Callable[[], bool] | None = None
    ) -> Totals:
        """`at_end()` tells that nothing more is coming for now, so a batch need not wait."""
        while not self.stopping:
            messages = await self._collect(at_end)
            if messages:
                await self._write(messages)
            if done is not None and done():
                break
        return self.totals

    async def _collect(self, at_end: Callable[[], bool] | None) -> list[Any]:
        """Records until the batch is full, its first record waited long enough, or a stop."""
        messages: list[Any] = []
        generation = self.source.generation
        deadline: float | None = None
        while len(messages) < self.batch_size and not self.stopping:
            wait = POLL_S if deadline is None else min(POLL_S, deadline - time.monotonic())
            if wait <= 0:
                break
            polled = await self.source.poll(self.batch_size - len(messages), wait)
            if self.source.generation != generation:
                # A rebalance or a seek: what we hold is read again from the stored offsets.
                generation = self.source.generation
                messages = []
            messages.extend(polled)
            if messages and deadline is None:
                deadline = time.monotonic() + self.batch_max_wait_s
            if not messages:
                deadline = None
            elif at_end is not None and at_end():
                break
        return messages

    async def _write(self, messages: list[Any]) -> None:
        batch = self.loader.prepare(messages)
        expected = dict(self.source.expected)
        started = time.monotonic()
        try:
            # The span ends when the rows (and the offsets) have committed, or rolled back.
            with tracing.batch_span(
                "write", (message.headers() for message in messages), {BATCH_SIZE: len(messages)}
            ):
                written = await self._until_stop_deadline(
                    self.database.run(lambda conn: self.loader.write(conn, batch, expected))
                )
            if not written:
                log.warning(
                    "stop deadline reached mid-batch: rolled back %d records", len(messages)
                )
                return
        except Fenced as exc:
            log.warning("%s; reading those partitions again from the stored offsets", exc)
            stored = await self.database.run(
                lambda conn: load_offsets(conn, self.loader.group, self.topics)
            )
            await self.source.seek({key: stored.get(key) for key in exc.moved})
            return
        for key, offset in batch.positions.items():
            if key in self.source.expected:
                self.source.expected[key] = offset
        SINK_BATCH_SECONDS.observe(time.monotonic() - started)
        SINK_BATCH_RECORDS.observe(len(messages))
        for topic, count in Counter(message.topic() for message in messages).items():
            RECORDS_IN.labels(topic).inc(count)
        self.totals.records += batch.records
        self.totals.batches += 1
        self.totals.rejected = self.loader.rejects.published
        if self.on_batch is not None:
            self.on_batch(batch)

    async def _until_stop_deadline(self, work: Coroutine[Any, Any, None]) -> bool:
        """Run `work` to its end unless a stop comes and its deadline passes first; then it is
        cancelled (its transaction rolls back) and the answer is False."""
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if task.done():
            task.result()
            return True
        assert self._stop_deadline is not None
        try:
            await asyncio.wait_for(task, max(self._stop_deadline - time.monotonic(), 0.1))
        except TimeoutError:
            return False
        return True
