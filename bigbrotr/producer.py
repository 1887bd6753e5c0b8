"""The one Kafka producer the connectors publish with: librdkafka behind an asyncio face.

librdkafka (confluent-kafka) batches, partitions and retries in C; aiokafka did it in Python, at a
cost per record larger than everything else on the synchronizer's path. Records are idempotent
with `acks=all`, so retries after a broker failover neither duplicate nor reorder them, and keyed
records are partitioned with `murmur2_random`, the Java client's default: a key lands on the
partition aiokafka's `DefaultPartitioner`, Faust and Kafka Streams compute for it, which readers
of compacted topics (`load_cursor`) rely on.

`send` returns a future that is done once the broker holds the record, so a caller can confirm
events before it publishes the progress that claims them. Callers publishing many records use
`deliveries()` instead: one counter for the whole group rather than a future per record, which
is most of a record's cost on the synchronizer's path. One thread waits on librdkafka for
delivery reports and hands each batch of them to the event loop at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, cast

from confluent_kafka import KafkaError, KafkaException, Message
from confluent_kafka import Producer as _Client

from bigbrotr.config import Settings
from bigbrotr.errors import PublishError
from bigbrotr.observability.metrics import RECORDS_OUT
from bigbrotr.topics import kafka_unreachable

_REPORT_WAIT_S = 0.1
_FULL_QUEUE_WAIT_S = 0.005
_Report = tuple["asyncio.Future[None] | Deliveries", KafkaError | None]
Headers = list[tuple[str, bytes]]
"""Record headers: (name, value) pairs, as both confluent-kafka and Faust take them."""


class Producer:
    """`await producer.start()`, then `await producer.send(...)`, then `await producer.stop()`."""

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self._config: dict[str, Any] = {
            "bootstrap.servers": bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            "partitioner": "murmur2_random",
            "logger": logging.getLogger("bigbrotr.kafka"),
        }
        self._client: _Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reporter: threading.Thread | None = None
        self._stopping = threading.Event()
        self._reports: list[_Report] = []
        self._published: dict[str, Any] = {}  # per topic, its child of RECORDS_OUT

    async def start(self, timeout_s: float = 10.0) -> None:
        """Connect; `TopicError` when no broker answers within `timeout_s`."""
        client = _Client(self._config)
        try:
            await asyncio.to_thread(client.list_topics, timeout=timeout_s)
        except KafkaException as exc:
            raise kafka_unreachable(self.bootstrap_servers, exc.args[0]) from exc
        self._loop = asyncio.get_running_loop()
        self._client = client
        self._stopping.clear()
        self._reporter = threading.Thread(
            target=self._serve_reports,
            args=(client, self._loop),
            name="kafka delivery reports",
            daemon=True,
        )
        self._reporter.start()

    async def send(
        self, topic: str, value: bytes | None, *, key: bytes | None = None
    ) -> asyncio.Future[None]:
        """Queue one record; the future is done once the broker holds it (`PublishError` if it
        never will). Waits only while librdkafka's local queue is full.
        """
        client, loop = self._client, self._loop
        if client is None or loop is None:
            raise RuntimeError("the producer is not started; call `await producer.start()`")
        delivered: asyncio.Future[None] = loop.create_future()
        await self._produce(topic, value, key, partial(self._report, delivered))
        return delivered

    def deliveries(self) -> Deliveries:
        """A group of records whose delivery is confirmed once, for all of them."""
        return Deliveries(self)

    async def _produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        on_delivery: Callable[[KafkaError | None, Message], None],
        headers: Headers | None = None,
    ) -> None:
        client = self._client
        if client is None:
            raise RuntimeError("the producer is not started; call `await producer.start()`")
        while True:
            try:
                # Read only: confluent-kafka's stub asks for a list of the wider value type.
                wide = cast("list[tuple[str, str | bytes | None]] | None", headers)
                client.produce(topic, value, key, on_delivery=on_delivery, headers=wide)
            except BufferError:
                await asyncio.sleep(_FULL_QUEUE_WAIT_S)
            except KafkaException as exc:
                raise PublishError(f"cannot publish to {topic}: {exc.args[0]}") from exc
            else:
                self._count(topic)
                return

    def _count(self, topic: str) -> None:
        counter = self._published.get(topic)
        if counter is None:
            counter = self._published[topic] = RECORDS_OUT.labels(topic)
        counter.inc()

    async def send_and_wait(
        self, topic: str, value: bytes | None, *, key: bytes | None = None
    ) -> None:
        """Publish one record and return once the broker holds it."""
        await (await self.send(topic, value, key=key))

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Deliver what is queued (for at most `timeout_s`), then close; records still queued
        then fail with `PublishError`.
        """
        client, loop, reporter = self._client, self._loop, self._reporter
        self._client = None
        if client is None or loop is None or reporter is None:
            return
        self._stopping.set()
        await asyncio.to_thread(reporter.join)
        await asyncio.to_thread(client.flush, timeout_s)
        client.purge()
        client.poll(0)
        reports, self._reports = self._reports, []
        _settle(reports)

    def _report(
        self, delivered: asyncio.Future[None], error: KafkaError | None, _: Message
    ) -> None:
        """librdkafka's delivery callback, run by the thread that polls."""
        self._reports.append((delivered, error))

    def _serve_reports(self, client: _Client, loop: asyncio.AbstractEventLoop) -> None:
        while not self._stopping.is_set():
            client.poll(_REPORT_WAIT_S)
            if self._reports:
                reports, self._reports = self._reports, []
                try:
                    loop.call_soon_threadsafe(_settle, reports)
                except RuntimeError:  # the loop closed without stopping us: nobody is waiting
                    return


class Deliveries:
    """Records published as one group: `await group.send(...)` each, then
    `await group.confirmed()`, which returns once the broker holds every one of them and raises
    `PublishError` when it refused any. The group may go on sending after a confirmation.
    """

    def __init__(self, producer: Producer) -> None:
        self._producer = producer
        self._on_delivery = self._delivered  # one bound method for every record
        self._sent = 0
        self._settled = 0
        self._error: PublishError | None = None
        self._waiter: asyncio.Future[None] | None = None

    async def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Headers | None = None,
    ) -> None:
        """Queue one record; waits only while librdkafka's local queue is full. `headers`
        (name, value) pairs travel with it, e.g. a trace context."""
        await self._producer._produce(topic, value, key, self._on_delivery, headers)
        self._sent += 1

    async def confirmed(self) -> None:
        """Return once the broker holds every record sent so far."""
        if self._settled < self._sent:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self._error is not None:
            raise self._error

    def _delivered(self, error: KafkaError | None, _: Message) -> None:
        """librdkafka's delivery callback, run by the thread that polls."""
        self._producer._reports.append((self, error))

    def _settle(self, error: KafkaError | None) -> None:
        """One record's report, on the event loop."""
        self._settled += 1
        if error is not None and self._error is None:
            self._error = PublishError(f"the broker did not take a record: {error}")
        waiter = self._waiter
        if waiter is not None and self._settled >= self._sent and not waiter.done():
            waiter.set_result(None)


def _settle(reports: list[_Report]) -> None:
    for delivered, error in reports:
        if isinstance(delivered, Deliveries):
            delivered._settle(error)
            continue
        if delivered.done():
            continue
        if error is None:
            delivered.set_result(None)
        else:
            delivered.set_exception(PublishError(f"the broker did not take a record: {error}"))


def new_producer(settings: Settings) -> Producer:
    """The producer for `settings.kafka`; start it before use."""
    return Producer(settings.kafka.bootstrap_servers)
