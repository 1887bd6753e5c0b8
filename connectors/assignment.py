"""Which relays this process serves: the relays in the `relays` partitions Kafka assigns to it.

Fetcher processes join one consumer group on the compacted `relays` topic; the group coordinator
spreads the partitions over them, and a relay belongs to the process holding its key's partition.
Adding a process adds capacity, and a process that stops hands its partitions to the others: no
coordinator of our own (DESIGN.md §3).

Each assigned partition is read from its beginning (the compacted topic is the relay list, so no
offsets are committed). Before a partition is given away, `relays_revoked` is awaited: the
listener stops serving those relays first, so two processes never serve one relay at once.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaConnectionError

from bigbrotr.codec import Codec
from bigbrotr.config import KafkaSettings
from bigbrotr.errors import CodecError
from bigbrotr.nostr import InvalidRelayUrl, Network, normalize_relay_url
from bigbrotr.observability.metrics import RECORDS_IN
from bigbrotr.topics import kafka_unreachable

log = logging.getLogger("bigbrotr.assignment")

_POLL_MS = 500


@dataclass(frozen=True, slots=True)
class AssignedRelay:
    url: str
    network: Network


class AssignmentListener(Protocol):
    """What a service does when relays come and go."""

    def relays_added(self, relays: Sequence[AssignedRelay]) -> None:
        """Start serving these relays; must not block."""

    async def relays_revoked(self, urls: Collection[str]) -> None:
        """Stop serving these relays, and return only once they are stopped."""


class RelayAssignment:
    """Run with `await assignment.run()` until cancelled; `relays` is the current share.

    `group_id` is the full consumer group name: processes with the same one share the relays.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        group_id: str,
        listener: AssignmentListener,
        *,
        codec: Codec | None = None,
        heartbeat_interval_ms: int = 1000,
        session_timeout_ms: int = 10_000,
    ) -> None:
        self.topic = kafka.topic("relays")
        self.group_id = group_id
        self._kafka = kafka
        self._listener = listener
        self._codec = codec or Codec(registry=kafka.schema_registry_url)
        self._heartbeat_interval_ms = heartbeat_interval_ms
        self._session_timeout_ms = session_timeout_ms
        self._owned: dict[TopicPartition, dict[str, AssignedRelay]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self.generations = 0

    @property
    def relays(self) -> frozenset[str]:
        """URLs of the relays in the partitions this process holds now."""
        return frozenset(url for relays in self._owned.values() for url in relays)

    @property
    def partitions(self) -> frozenset[int]:
        return frozenset(partition.partition for partition in self._owned)

    async def run(self) -> None:
        """Join the group and follow the assigned partitions until cancelled; then stop serving
        every relay and leave the group, so the others take them over at once.
        """
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._kafka.bootstrap_servers,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            heartbeat_interval_ms=self._heartbeat_interval_ms,
            session_timeout_ms=self._session_timeout_ms,
        )
        self._consumer = consumer
        consumer.subscribe([self.topic], listener=_Rebalance(self))
        try:
            await consumer.start()
        except KafkaConnectionError as exc:
            raise kafka_unreachable(self._kafka.bootstrap_servers, exc) from exc
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=_POLL_MS)
                for partition, messages in batches.items():
                    await self._read(partition, messages)
        finally:
            try:
                await self._revoke(list(self._owned))
            finally:
                await consumer.stop()

    async def _read(self, partition: TopicPartition, messages: Sequence[Any]) -> None:
        owned = self._owned.get(partition)
        if owned is None:
            return
        RECORDS_IN.labels(self.topic).inc(len(messages))
        added: dict[str, AssignedRelay] = {}
        removed: set[str] = set()
        for message in messages:
            relay = self._relay(message)
            if relay is None:
                continue
            if isinstance(relay, str):
                if owned.pop(relay, None) is not None and added.pop(relay, None) is None:
                    removed.add(relay)
            elif relay.url not in owned:
                owned[relay.url] = relay
                if relay.url in removed:
                    removed.discard(relay.url)
                else:
                    added[relay.url] = relay
        if added:
            self._listener.relays_added(list(added.values()))
        if removed:
            await self._listener.relays_revoked(removed)

    def _relay(self, message: Any) -> AssignedRelay | str | None:
        """The relay a record announces, its URL for a tombstone, None for a record we skip."""
        try:
            url = normalize_relay_url(bytes(message.key or b"").decode())
        except (InvalidRelayUrl, UnicodeDecodeError):
            log.warning("skipping a record of %s with the bad key %r", self.topic, message.key)
            return None
        if message.value is None:
            return url
        try:
            value = self._codec.decode("RelayDiscovered", message.value)
        except CodecError as exc:
            log.warning("skipping the record of %s at offset %s: %s", url, message.offset, exc)
            return None
        return AssignedRelay(url, Network(value["network"]))

    async def _assigned(self, partitions: Collection[TopicPartition]) -> None:
        self.generations += 1
        for partition in partitions:
            self._owned[partition] = {}
        if partitions and self._consumer is not None:
            await self._consumer.seek_to_beginning(*partitions)
        log.info("%s: assigned partitions %s", self.group_id, sorted(self.partitions))

    async def _revoke(self, partitions: Collection[TopicPartition]) -> None:
        urls: set[str] = set()
        for partition in partitions:
            urls.update(self._owned.pop(partition, {}))
        if urls:
            await self._listener.relays_revoked(urls)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, assignment: RelayAssignment) -> None:
        self._assignment = assignment

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        await self._assignment._revoke(revoked)

    async def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        await self._assignment._assigned(assigned)
