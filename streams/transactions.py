"""Exactly-once for Faust agents that send, which faust-streaming 0.15 does not give by itself.

Gaps in its `processing_guarantee="exactly_once"` lose or duplicate records after a crash or a
rebalance:
- a send joins the transaction of its *destination* partition, and goes out with no transaction
  at all when the consumer has no metadata for the destination topic (every output topic), so
  outputs commit independently of the input offsets;
- table changes reach their changelog from a background buffer, possibly after the transaction
  that committed the input offset;
- offsets may commit while an agent is half-way through a record, and are chosen before the
  commit waits for it, so they can miss records whose output the transaction holds;
- at a rebalance, producers of partitions that stay keep transactions open across it;
- table recovery takes each changelog's last stable offset from the consumer's last fetch, which
  is -1 for a partition not fetched yet, so it skips what it should restore or stops with a
  ConsistencyError;
- recovery resumes stream partitions before seeking them to the committed offsets, and kept
  partitions keep the read and ack bookkeeping of the aborted generation: records are then
  dropped as already read, or a hole in the acks stops every later commit of a partition.

So agents process records a batch at a time (`RecordBoundary`): every output of a record joins
the transaction of the record's source partition (`Batch`, `BatchProducer`), and every producer
is renewed at a rebalance (`SourceTransactions`); tables publish their changes with the batch
that made them (`RecordTable`); a commit waits for the batch in progress and for its queued
sends, and chooses its offsets after them; recovery asks the broker for the last stable offsets,
and stream partitions resume only after their seek (`StableOffsetConsumer`), with their
bookkeeping reset at every rebalance.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any, cast

import faust
from aiokafka import AIOKafkaProducer
from faust.exceptions import ProducerSendError
from faust.stores.rocksdb import Store as RocksDBStore
from faust.tables import Table
from faust.transport.consumer import TopicPartitionGroup, TransactionManager
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP, AppT, EventT, Message, StoreT
from faust.types.transports import TransportT
from yarl import URL

from bigbrotr.observability.metrics import RECORDS_OUT
from streams.batches import Batch, Record, by_partition
from streams.metadata import until_in_metadata
from streams.progress import Admission, HoleCheck, Progress
from streams.table_memory import MIB, TableMemory

log = logging.getLogger("bigbrotr.worker")

# How long a subscription waits for the broker to list the topics the worker just created.
METADATA_WAIT_S = 30.0
EXIT_BATCH_FAILED = 70  # EX_SOFTWARE


class RecordBoundary:
    """Batches and commits exclude each other, so a commit never splits a batch's output.

    `tables` are the app's `RecordTable`s, whose changes go out with each batch's output;
    `progress` is how far each partition was processed, which is what commits.
    """

    def __init__(self, app: StreamApp) -> None:
        self.app = app
        self.lock = asyncio.Lock()
        self.tables: list[RecordTable] = []
        self.progress = Progress()
        self.holes = HoleCheck(",".join(f"{url.host}:{url.port}" for url in app.conf.broker))

    async def process(self, stream: faust.StreamT[Any], handle: Callable[[Batch], None]) -> None:
        """Run `handle` on each batch of the stream; an error in it stops the process.

        A batch that failed half-way has claimed table keys and advanced offsets that its
        unsent output does not back. Exiting lets the broker abort the open transactions, and
        the restarted worker (the supervisor restarts it) processes the batch again from the
        committed offsets, with only committed table state.
        """
        async for batch in self._batches(stream):
            try:
                handle(batch)
            except Exception:
                log.critical("processing a batch failed; exiting so it is processed again")
                log.exception("the failure")
                logging.shutdown()
                os._exit(EXIT_BATCH_FAILED)

    async def _batches(self, stream: faust.StreamT[Any]) -> AsyncIterator[Batch]:
        """The stream's records in offset order, as batches of those already fetched, each
        processed under the boundary's lock; what a batch queued is sent when it is done.

        A batch is processed before the stream moves past its last record, which stays unacked
        meanwhile: a rebalance waits for it (Faust waits for unacked records). Records fetched
        before a rebalance or a seek are dropped; they are read again from the committed offsets.
        """
        most, linger = self.app.batch_records, self.app.batch_linger_s
        queue = cast(faust.ChannelT[Any], stream.channel).queue
        pending: list[EventT[Any]] = []
        lingered = False
        generation = self.progress.generation
        async for event in stream.events():
            if generation != self.progress.generation:
                pending.clear()
                generation = self.progress.generation
            pending.append(event)
            if len(pending) < most and queue.empty() and not lingered and linger:
                # Records come from the fetcher in bursts: a short wait saves sending and
                # committing a handful of records at a time.
                await asyncio.sleep(linger)
                lingered = True
            if len(pending) < most and not queue.empty():
                continue
            lingered = False
            async with self.lock:
                admitted = [] if generation != self.progress.generation else pending
                batch = Batch([event for event in admitted if await self._admit(event)])
                pending = []
                if batch.events:
                    yield batch
                    await self._finish(batch)

    async def _finish(self, batch: Batch) -> None:
        for table in self.tables:
            table.queue_changelog(batch)
        producer = cast(BatchProducer, self.app.producer)
        transactions = cast(SourceTransactions, self.app.consumer.transactions)
        topic = batch.events[0].message.topic
        for source, destination, partition, records in batch.outputs():
            transactional_id = (
                transactions.transactional_id(TP(topic, source))
                if self.app.in_transaction
                else None
            )
            if partition is None:
                partitions = await producer.partition_count(destination)
                grouped = by_partition(records, partitions)
            else:
                grouped = {partition: records}
            for chosen, grouped_records in grouped.items():
                producer.queue_records(transactional_id, destination, chosen, grouped_records)
            RECORDS_OUT.labels(destination).inc(len(records))
        for event in batch.events:
            self.progress.done(event.message.tp, event.message.offset)

    async def _admit(self, event: EventT[Any]) -> bool:
        tp, offset = event.message.tp, event.message.offset
        admission = self.progress.admit(tp, offset)
        if admission is not Admission.CHECK_HOLE:
            return admission is Admission.PROCESS
        expected = cast(int, self.progress.expected(tp))
        if await asyncio.to_thread(self.holes.is_empty, tp, expected, offset):
            self.progress.hole_is_empty(tp, offset)
            return True
        log.warning("%s: offset %d arrived before %d; seeking back", tp, offset, expected)
        self.progress.rewinding(tp)
        await self.app.consumer.seek(_kafka_tp(tp), expected)
        return False


class StreamApp(faust.App):
    """A Faust app whose transactions follow the records being processed."""

    boundary: RecordBoundary

    def __init__(
        self,
        *args: Any,
        batch_records: int = 1000,
        batch_linger_s: float = 0.0,
        table_memory_bytes: int = 64 * MIB,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.batch_records = batch_records
        self.batch_linger_s = batch_linger_s
        self.table_memory = TableMemory(table_memory_bytes)
        self.boundary = RecordBoundary(self)

    async def on_stop(self) -> None:
        await super().on_stop()
        await asyncio.to_thread(self.boundary.holes.close)

    def _new_transport(self) -> TransportT:
        transport = super()._new_transport()
        transport.TransactionManager = SourceTransactions  # type: ignore[misc]
        transport.Consumer = StableOffsetConsumer  # type: ignore[misc]
        transport.Producer = BatchProducer  # type: ignore[misc]
        return transport

    def raw_topic(self, name: str, **options: Any) -> faust.TopicT:
        """A topic whose records reach agents as the bytes Kafka holds."""
        return self.topic(name, schema=RawSchema(), **options)

    def record_table(
        self, name: str, *, partitions: int, key_type: type[str | bytes] = str
    ) -> RecordTable:
        """A table in the app's store whose changes travel with their batch.

        `str` keys reach the changelog as JSON strings, `bytes` keys as they are. Each partition
        is a RocksDB database inside the app's `table_memory`.
        """
        table = RecordTable(
            self,
            name=name,
            partitions=partitions,
            key_type=key_type,
            beacon=self.tables.beacon,
        )
        self.tables.add(table)
        self.boundary.tables.append(table)
        return table


class RawSchema(faust.Schema[bytes, bytes]):
    """Keys and values as the bytes Kafka holds: an event per record without Faust's codec
    lookups, a large part of its per-record cost."""

    def compile(self, app: AppT, **_: Any) -> Callable[..., Awaitable[EventT[Any]]]:
        event_class = cast(Callable[..., EventT[Any]], app.conf.Event)

        async def decode(message: Message, *, propagate: bool = False) -> EventT[Any]:
            return event_class(app, message.key, message.value, message.headers, message)

        return decode


class StableOffsetConsumer(aiokafka_driver.Consumer):
    """A consumer that commits the record boundary's progress instead of Faust's own account,
    whose stream partitions resume only once they are back at their committed offsets, and whose
    table recovery reads up to the broker's current last stable offsets.

    Faust's recovery resumes the stream partitions and only then seeks them; records fetched in
    between are then processed from before the seek. Faust's read offsets would drop records
    read again after a seek as already seen, so they are not kept: `Progress` skips what was
    processed already.
    """

    _seek_pending: bool = False
    _held: set[TP]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_offset = _NoReadOffsets()

    def _new_consumer_thread(self) -> aiokafka_driver.AIOKafkaConsumerThread:
        return _StableOffsetThread(self, loop=self.loop, beacon=self.beacon)

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        """Nothing counts as processed until the seek: commits made while Faust recovers would
        otherwise commit progress whose output the rebalance just aborted."""
        self._seek_pending, self._held = True, set()
        _boundary(self.app).progress.restart({})
        for tp in assigned:
            self._committed_offset.pop(tp, None)
        await super().on_partitions_assigned(assigned, generation_id)

    def resume_partitions(self, tps: Iterable[TP]) -> None:
        if not self._seek_pending:
            super().resume_partitions(tps)
            return
        streams = {tp for tp in tps if not self._is_changelog(tp)}
        self._held |= streams
        super().resume_partitions(set(tps) - streams)

    async def perform_seek(self) -> None:
        """Faust also seeks when polled while its flow is stopped, before recovery resumed any
        stream partition: only a seek made after they were held may release them."""
        await super().perform_seek()
        if self._held:
            self._seek_pending = False
            super().resume_partitions(self._held)
            self._held = set()

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed: Mapping[TP, int] = await super().seek_to_committed()
        streams = [tp for tp in committed if not self._is_changelog(tp)]
        starts = {
            _kafka_tp(tp): offset
            for tp in streams
            if (offset := committed[tp]) is not None and offset >= 0
        }
        fresh = [_kafka_tp(tp) for tp in streams if _kafka_tp(tp) not in starts]
        if fresh:
            earliest = await self.earliest_offsets(*fresh)
            starts.update({_kafka_tp(tp): offset for tp, offset in earliest.items()})
        # aiokafka leaves a partition without a committed offset (or at 0) where its fetcher
        # got to, which may be past records never processed: every position is set here.
        for tp, offset in starts.items():
            await self.seek(tp, offset)
        _boundary(self.app).progress.restart(starts)
        return committed

    async def commit(
        self, topics: AbstractSet[str | TP] | None = None, start_new_transaction: bool = True
    ) -> bool:
        """Commit how far the records were processed, between two records.

        Offsets chosen outside the lock could miss a record that finishes while the commit
        waits, whose output would then commit without its offset.
        """
        boundary = _boundary(self.app)
        async with boundary.lock:
            assigned = self.assignment()
            offsets = {
                _kafka_tp(tp): offset
                for tp, offset in boundary.progress.committable(self._committed_offset).items()
                if tp in assigned and (topics is None or tp in topics or tp.topic in topics)
            }
            self._acked.clear()
            self._acked_index.clear()
            if not offsets:
                return False
            await cast(BatchProducer, self.app.producer).flush_queued()
            if self.app.in_transaction:
                committed = await self.transactions.commit(
                    offsets, start_new_transaction=start_new_transaction
                )
            else:
                await self.app.producer.flush()
                committed = await self._commit(offsets)
            if committed:
                self._committed_offset.update(offsets)
                self.app.monitor.on_tp_commit(offsets)
                # Faust's commit-livelock check sees only the consumer's own commits: without
                # this, a busy worker logs an ERROR per partition every few seconds from minute 5.
                now = time.monotonic()
                self._thread.tp_last_committed_at.update(dict.fromkeys(offsets, now))
            return bool(committed)

    def _is_changelog(self, tp: TP) -> bool:
        return tp.topic in self.app.tables.changelog_topics


def _kafka_tp(tp: TP) -> TP:
    """aiokafka's own partition type, which its offset commits insist on (Faust's is equal)."""
    return cast(TP, aiokafka_driver.ensure_aiokafka_TP(tp))


class _NoReadOffsets(dict[TP, int | None]):
    """Faust's read offsets, never kept: every read offset is unknown."""

    def __getitem__(self, tp: TP) -> None:
        return None

    def __setitem__(self, tp: TP, offset: int | None) -> None:
        return None

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None


class _StableOffsetThread(aiokafka_driver.AIOKafkaConsumerThread):
    async def subscribe(self, topics: Iterable[str]) -> None:
        """Only once the broker lists every topic: see `streams.metadata`."""
        wanted = set(topics)
        await self.call_thread(self._until_in_metadata, wanted)
        await super().subscribe(wanted)

    async def _until_in_metadata(self, topics: set[str]) -> None:
        client = self._ensure_consumer()._client
        await until_in_metadata(client, topics, timeout_s=METADATA_WAIT_S)

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        ends: Mapping[TP, int] = await self._ensure_consumer().end_offsets(partitions)
        return ends


class BatchProducer(aiokafka_driver.Producer):
    """Faust's producer, plus sending many records to one partition as record batches, in the
    background: a batch handed to aiokafka waits until the partition's previous one left, and
    the agent need not wait with it. A commit first waits for everything queued."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._partition_counts: dict[str, int] = {}
        self._queued: dict[tuple[str | None, str, int], asyncio.Future[None]] = {}

    async def partition_count(self, topic: str) -> int:
        if topic not in self._partition_counts:
            partitions = await self._ensure_producer().partitions_for(topic)
            self._partition_counts[topic] = len(partitions)
        return self._partition_counts[topic]

    def queue_records(
        self, transactional_id: str | None, topic: str, partition: int, records: list[Record]
    ) -> None:
        """Send `records` after those queued before for the same partition and transaction
        (None: no transaction, at-least-once)."""
        key = (transactional_id, topic, partition)
        before = self._queued.get(key)
        self._queued[key] = asyncio.ensure_future(
            self._send_after(before, transactional_id, topic, partition, records)
        )

    async def flush_queued(self) -> None:
        """Wait until every queued record is in its transaction; a failed send raises here."""
        queued, self._queued = self._queued, {}
        await asyncio.gather(*queued.values())

    async def cancel_queued(self) -> None:
        """Drop what is still queued: its transactions are about to be aborted."""
        queued, self._queued = self._queued, {}
        for future in queued.values():
            future.cancel()
        await asyncio.gather(*queued.values(), return_exceptions=True)

    async def _send_after(
        self,
        before: asyncio.Future[None] | None,
        transactional_id: str | None,
        topic: str,
        partition: int,
        records: list[Record],
    ) -> None:
        if before is not None:
            await before
        await self.send_records(transactional_id, topic, partition, records)

    async def send_records(
        self, transactional_id: str | None, topic: str, partition: int, records: Iterable[Record]
    ) -> None:
        """Add `records` to the transaction `transactional_id`; its commit waits for them."""
        if transactional_id is None:
            await self._send_batches(self._ensure_producer(), topic, partition, records)
            return
        producer = self._transaction_producers.get(transactional_id)
        if producer is None:
            raise ProducerSendError(f"no transactional producer {transactional_id}")
        async with self._trn_locks[transactional_id]:
            await self._send_batches(producer, topic, partition, records)

    @staticmethod
    async def _send_batches(
        producer: AIOKafkaProducer, topic: str, partition: int, records: Iterable[Record]
    ) -> None:
        builder = producer.create_batch()
        for key, value, headers in records:
            record = {"key": key, "value": value, "timestamp": None, "headers": headers or []}
            if builder.append(**record) is None:
                await producer.send_batch(builder, topic, partition=partition)
                builder = producer.create_batch()
                if builder.append(**record) is None:
                    raise ProducerSendError(
                        f"a record of {len(value or b'')} bytes is larger than a batch may be"
                    )
        if builder.record_count():
            await producer.send_batch(builder, topic, partition=partition)


class SourceTransactions(TransactionManager):
    """Names the transaction of each source partition, and renews every transactional producer
    at each rebalance.

    Faust commits what it processed before a rebalance; a transaction still open after that holds
    output of records whose offsets were not committed, so it is aborted, whoever gets the
    partition next. Faust would keep the producers of partitions that stay, with such
    transactions open: their output then commits later without its offsets, and the open
    transaction holds back the changelog's last stable offset until table recovery crashes.
    """

    _open_tids: tuple[str, ...] = ()

    async def on_rebalance(
        self, assigned: set[TP], revoked: set[TP], newly_assigned: set[TP]
    ) -> None:
        await cast(BatchProducer, self.app.producer).cancel_queued()
        await self._stop_transactions(self._open_tids)
        for table in _boundary(self.app).tables:
            table.forget_uncommitted()
        self._open_tids = tuple(sorted(self._tps_to_transactional_ids(assigned)))
        await self._start_transactions(self._open_tids)

    async def _stop_transactions(self, tids: Iterable[str]) -> None:
        for transactional_id in tids:
            await self.producer.abort_transaction(transactional_id)
            await self.producer.stop_transaction(transactional_id)

    def transactional_id(self, source: TP) -> str:
        """The producer whose transaction holds the output of records from `source`: Faust's
        own naming, which its commits route offsets by."""
        group = self.app.assignor.group_for_topic(source.topic)
        return self.transactional_id_format.format(
            tpg=TopicPartitionGroup(source.topic, source.partition, group),
            group_id=self.app.conf.id,
        )

    async def commit(self, offsets: Mapping[TP, int], start_new_transaction: bool = True) -> bool:
        """Runs under the record boundary's lock, taken by `StableOffsetConsumer.commit`."""
        committed = await super().commit(offsets, start_new_transaction=start_new_transaction)
        if committed:
            for table in _boundary(self.app).tables:
                group = self.app.assignor.group_for_topic(table.changelog_topic_name)
                table.keep_committed(
                    tp.partition
                    for tp in offsets
                    if self.app.assignor.group_for_topic(tp.topic) == group
                )
        return committed


def _boundary(app: AppT) -> RecordBoundary:
    if not isinstance(app, StreamApp):
        raise TypeError("SourceTransactions needs a StreamApp")
    return app.boundary


class RecordTable(Table[Any, Any]):
    """A table read and written a batch at a time: its changes go out with the batch's output,
    inside the source partition's transaction, and reach the local store once that commits.

    So the local RocksDB copy only ever holds committed state: a transaction aborted by a crash
    or a rebalance leaves nothing behind that would pass for output already sent.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unsent: defaultdict[int, dict[Any, Any]] = defaultdict(dict)
        self._uncommitted: defaultdict[int, dict[Any, Any]] = defaultdict(dict)

    def _new_store_by_url(self, url: str | URL) -> StoreT[Any, Any]:
        store = cast(RocksDBStore, super()._new_store_by_url(url))
        store.rocksdb_options = cast(StreamApp, self.app).table_memory.options(
            store.rocksdb_options
        )
        return store

    def lookup(self, source: EventT[Any], key: Any) -> Any:
        """The value for `key` in the partition of `source`, None when there is none."""
        partition = source.message.partition
        uncommitted = self._uncommitted.get(partition)
        if uncommitted is not None and key in uncommitted:
            return uncommitted[key]
        store = cast(RocksDBStore, self.data)
        stored = store._db_for_partition(partition).get(store._encode_key(key))
        return None if stored is None else store._decode_value(stored)

    def put(self, source: EventT[Any], key: Any, value: Any) -> None:
        partition = source.message.partition
        self._uncommitted[partition][key] = value
        self._unsent[partition][key] = value

    def queue_changelog(self, batch: Batch) -> None:
        """Queue the batch's changes, the last value per key, in the batch's transactions."""
        topic = self.changelog_topic
        name = topic.get_topic_name()
        for partition, changes in self._unsent.items():
            for key, value in changes.items():
                key_bytes, _ = topic.prepare_key(key, self.key_serializer)
                value_bytes, _ = topic.prepare_value(value, self.value_serializer)
                batch.send(partition, name, key_bytes, value_bytes, partition=partition)
        self._unsent.clear()

    def keep_committed(self, partitions: Iterable[int]) -> None:
        """Write what records of these partitions changed, now that their transactions committed."""
        store = cast(RocksDBStore, self.data)
        for partition in partitions:
            changes = self._uncommitted.pop(partition, {})
            database = store._db_for_partition(partition)
            for key, value in changes.items():
                encoded = store._encode_key(key)
                database.put(encoded, store._encode_value(value))
                store._key_index[encoded] = partition

    def forget_uncommitted(self) -> None:
        self._unsent.clear()
        self._uncommitted.clear()
