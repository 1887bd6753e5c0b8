"""Pulls one relay's history over a time range into `events.raw`, and records progress in
`sync-cursors`.

The I/O around the pure planner (`connectors.sync`): every REQ it proposes goes over one
`RelayClient`, and every event the relay sends is published exactly as received, keyed by the id it
claims, before the progress that proves it is written. Events that cannot even be parsed are
published too, so the validator rejects them with a reason: nothing a relay sends is lost.

Resume semantics: with a cursor, only what it does not settle inside `since..until` is pulled,
plus its newest settled second again (events created in that second may have reached the relay
after it was pulled). So a second run over a settled range publishes again the events of that one
second and, when the planner must probe the relay's unknown cap, the one page of the relay's newest
events that probe returns; nothing else. The stream dedupes them by id.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from bigbrotr.codec import Codec
from bigbrotr.config import Settings
from bigbrotr.errors import TopicError
from bigbrotr.nostr import Event, Filter, InvalidEvent, event_from_object, normalize_relay_url
from bigbrotr.producer import Deliveries, Producer
from connectors.client import (
    ClientLimits,
    EndReason,
    ReceivedEvent,
    RelayClient,
    SubscriptionResult,
)
from connectors.sync import (
    Coverage,
    Gap,
    Page,
    RelayCap,
    SyncPolicy,
    WindowPlanner,
    coverage_from_record,
    cursor_record,
)

SOURCE = "sync"
_READ_TIMEOUT_MS = 1000


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What one `sync_relay` run did.

    `pulled` is what this run settled (None when the cursor left nothing to pull); `cursor` is the
    progress published, merged with the previous one. `end_reasons` counts how each REQ ended.
    `cap` is what was learned of the relay's answers; hand it to the next run of the same relay.
    """

    relay_url: str
    requests: int
    published: int
    unreadable: int
    pulled: Coverage | None
    cursor: Coverage
    end_reasons: Mapping[EndReason, int]
    cap: RelayCap = field(default_factory=RelayCap)

    @property
    def gaps(self) -> tuple[Gap, ...]:
        """The seconds this run could not prove pulled, with the reason for each."""
        return () if self.pulled is None else self.pulled.gaps


async def sync_relay(
    relay_url: str,
    *,
    since: int,
    until: int,
    producer: Producer,
    codec: Codec,
    settings: Settings,
    cursor: Coverage | None = None,
    policy: SyncPolicy | None = None,
    base: Filter | None = None,
    max_limit: int | None = None,
    allow: Collection[str] = (),
    limits: ClientLimits | None = None,
    proxy: str | None = None,
    cap: RelayCap | None = None,
) -> SyncReport:
    """Pull seconds `since..until` (inclusive) that `cursor` leaves open, then publish progress.

    `producer` must be started (see `bigbrotr.producer.new_producer`). `max_limit` is the
    relay's NIP-11 limit; `allow`, `limits` and `proxy` go to the `RelayClient`. `cap` is the
    previous run's `SyncReport.cap`, which saves the requests that learn it again.
    """
    url = normalize_relay_url(relay_url)
    previous = cursor if cursor is not None else Coverage()
    windows = _windows(previous, since, until)
    events_topic = settings.kafka.topic("events.raw")
    cap = RelayCap() if cap is None else cap
    requests = published = unreadable = 0
    end_reasons: Counter[EndReason] = Counter()
    pulled: Coverage | None = None
    # The broker acknowledges one page while the relay sends the next; all before the cursor.
    delivered = producer.deliveries()
    async with RelayClient(url, allow=allow, limits=limits, proxy=proxy) as client:
        for low, high in windows:
            planner = WindowPlanner(
                low, high, policy=policy, base=base, max_limit=max_limit, cap=cap
            )
            while (flt := planner.next_request()) is not None:
                sending = producer.deliveries()
                page, result = await _pull_page(client, flt, sending, codec, events_topic)
                end_reasons[result.end_reason] += 1
                await delivered.confirmed()
                delivered = sending
                published += result.events
                unreadable += page.unreadable
                planner.record(page)
            requests += planner.requests
            cap = planner.cap
            pulled = planner.coverage if pulled is None else pulled.merge(planner.coverage)
    await delivered.confirmed()
    merged = previous if pulled is None else previous.merge(pulled)
    record = cursor_record(url, merged, updated_at_ms=int(time.time() * 1000))
    await producer.send_and_wait(
        settings.kafka.topic("sync-cursors"), codec.encode("SyncCursor", record), key=url.encode()
    )
    return SyncReport(
        url, requests, published, unreadable, pulled, merged, dict(end_reasons), cap=cap
    )


async def load_cursor(settings: Settings, relay_url: str) -> Coverage | None:
    """The relay's latest progress from the compacted `sync-cursors` topic; None when it has none.

    Reads only the partition the relay's key lands on, from its start to its current end.
    """
    url = normalize_relay_url(relay_url)
    key = url.encode()
    topic = settings.kafka.topic("sync-cursors")
    codec = Codec()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        if not partitions:
            raise TopicError(
                f"topic {topic} does not exist; create the topics with `bigbrotr topics create`"
            )
        partition = TopicPartition(topic, DefaultPartitioner()(key, partitions, partitions))
        consumer.unsubscribe()
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        end = (await consumer.end_offsets([partition]))[partition]
        latest: bytes | None = None
        while await consumer.position(partition) < end:
            batches = await consumer.getmany(partition, timeout_ms=_READ_TIMEOUT_MS)
            for message in batches.get(partition, []):
                if message.key == key:
                    latest = message.value
    finally:
        await consumer.stop()
    return None if latest is None else coverage_from_record(codec.decode("SyncCursor", latest))


def _windows(previous: Coverage, since: int, until: int) -> list[tuple[int, int]]:
    """The parts of `since..until` the previous progress leaves to pull, newest first."""
    if not 0 <= since <= until:
        raise ValueError(f"cannot sync the window {since}..{until}: need 0 <= since <= until")
    clipped = [
        (max(low, since), min(high, until)) for low, high in previous.next_windows(until, since)
    ]
    return [(low, high) for low, high in clipped if low <= high]


async def _pull_page(
    client: RelayClient,
    flt: Filter,
    deliveries: Deliveries,
    codec: Codec,
    topic: str,
) -> tuple[Page, SubscriptionResult]:
    """Send one REQ and publish each event as it arrives, while the relay sends the next.

    The planner's view of the answer is built from the objects the client decoded, without
    decoding the text again; the stream validator parses the text strictly. Events that cannot
    be parsed are published too and counted: they took a place within the relay's cap.
    """
    events: list[Event] = []
    unreadable = 0
    async with client.subscribe([flt]) as subscription:
        async for received in subscription:
            key = None if received.event_id is None else received.event_id.encode()
            value = raw_event_value(codec, client.url, received, SOURCE)
            await deliveries.send(topic, value, key=key)
            try:
                events.append(event_from_object(received.fields))
            except InvalidEvent:
                unreadable += 1
    result = subscription.result
    eose = result.end_reason is EndReason.EOSE
    detail = "" if eose else f"{result.end_reason}: {result.detail}"
    return Page(events, eose=eose, unreadable=unreadable, detail=detail), result


def raw_event_value(codec: Codec, relay_url: str, received: ReceivedEvent, source: str) -> bytes:
    """The `events.raw` value for an event exactly as the relay sent it."""
    value = {
        "relay_url": relay_url,
        "seen_at": int(received.seen_at * 1000),
        "raw": received.text.encode(),
        "source": source,
    }
    # Every field's type is fixed right here, so the schema check per event is skipped.
    return codec.encode("RawEvent", value, validated=False)
