"""Pulls one relay's history over a time range into `events.raw`, and records progress in
`sync-cursors`.

With a `NegentropyPuller`, each window is first reconciled with the archive's ids (NIP-77) where
the relay speaks it, and only the ids the archive lacks are fetched (`connectors.negentropy_pull`);
a window that method does not prove complete is paged as below.

The I/O around the pure planner (`connectors.sync`): every REQ it proposes goes over one
`RelayClient`, and every event the relay sends is published exactly as received, keyed by the id it
claims, before the progress that proves it is written. Events that cannot even be parsed are
published too, so the validator rejects them with a reason: nothing a relay sends is lost.

Within one run each event is published once: a window's pages overlap (each asks again for the
oldest second of the one before), but only what the planner claims as new is published, and the
answers to its probes of the relay's cap and `until` reading are not published at all. What can
repeat: events a relay sends that cannot be parsed (nothing identifies them), and, once per run
while a relay's `until` reading is unknown, the events of the one second above a window.

Resume semantics: with a cursor, only what it does not settle inside `since..until` is pulled,
plus its newest settled second again (events created in that second may have reached the relay
after it was pulled). So a second run over a settled range publishes again the events of that one
second; nothing else. The stream dedupes them by id.
"""

from __future__ import annotations

import logging
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
from bigbrotr.observability import tracing
from bigbrotr.observability.metrics import SYNC_WINDOWS
from bigbrotr.producer import Deliveries, Producer
from connectors.client import (
    ClientLimits,
    EndReason,
    Fetched,
    ReceivedEvent,
    Reconciliation,
    RelayClient,
    SubscriptionResult,
)
from connectors.negentropy_pull import NOT_NIP77, NegentropyPuller
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

log = logging.getLogger("bigbrotr.sync")

SOURCE = "sync"
_READ_TIMEOUT_MS = 1000


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What one `sync_relay` run did.

    `pulled` is what this run settled (None when the cursor left nothing to pull); `cursor` is the
    progress published, merged with the previous one. `end_reasons` counts how each REQ ended.
    `cap` is what was learned of the relay's answers; hand it to the next run of the same relay.
    `negentropy` says what reconciliation did (None when it was not tried).
    """

    relay_url: str
    requests: int
    published: int
    unreadable: int
    pulled: Coverage | None
    cursor: Coverage
    end_reasons: Mapping[EndReason, int]
    cap: RelayCap = field(default_factory=RelayCap)
    negentropy: NegentropyStats | None = None

    @property
    def gaps(self) -> tuple[Gap, ...]:
        """The seconds this run could not prove pulled, with the reason for each."""
        return () if self.pulled is None else self.pulled.gaps


@dataclass(slots=True)
class NegentropyStats:
    """Per run: windows proven by reconciliation, and why the others were paged instead.

    `needed` counts ids only the relay had, `fetched` the events that came for them; bytes are
    the reconciliation messages both ways (the events fetched by id come on top).
    """

    windows_reconciled: int = 0
    fallbacks: list[str] = field(default_factory=list)
    rounds: int = 0
    needed: int = 0
    fetched: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0


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
    negentropy: NegentropyPuller | None = None,
) -> SyncReport:
    """Pull seconds `since..until` (inclusive) that `cursor` leaves open, then publish progress.

    `producer` must be started (see `bigbrotr.producer.new_producer`). `max_limit` is the
    relay's NIP-11 limit; `allow`, `limits` and `proxy` go to the `RelayClient`. `cap` is the
    previous run's `SyncReport.cap`, which saves the requests that learn it again. `negentropy`
    (one per process) reconciles each window first where the relay speaks NIP-77.
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
    stats = None if negentropy is None else NegentropyStats()

    async def publish(fetched: Fetched) -> None:
        nonlocal delivered, published
        sending = producer.deliveries()
        headers = tracing.headers_for_current_span()
        for received in fetched.events:
            key = None if received.event_id is None else received.event_id.encode()
            value = raw_event_value(codec, url, received, SOURCE)
            await sending.send(events_topic, value, key=key, headers=headers)
        await delivered.confirmed()
        delivered = sending
        published += len(fetched.events)

    async with RelayClient(url, allow=allow, limits=limits, proxy=proxy) as client:
        for low, high in windows:
            if negentropy is not None and stats is not None:
                chunk = page_limit(policy, max_limit)
                with tracing.fetch_span(url, "negentropy", low, high):
                    window = await negentropy.pull(
                        client, low, high, base=base, chunk=chunk, publish=publish
                    )
                requests += window.requests
                end_reasons.update(window.end_reasons)
                _count(stats, window.reconciliations, window.fetched)
                if window.proved:
                    stats.windows_reconciled += 1
                    SYNC_WINDOWS.labels("reconciled").inc()
                    proved = Coverage(low, high)
                    pulled = proved if pulled is None else pulled.merge(proved)
                    continue
                stats.fallbacks.append(f"{low}..{high}: {window.reason}")
                if window.reason != NOT_NIP77:
                    log.warning(
                        "%s: NIP-77 did not prove %d..%d, paging it: %s",
                        url,
                        low,
                        high,
                        window.reason,
                    )
            SYNC_WINDOWS.labels("paged").inc()
            planner = WindowPlanner(
                low, high, policy=policy, base=base, max_limit=max_limit, cap=cap
            )
            while (flt := planner.next_request()) is not None:
                sending = producer.deliveries()
                page, result, sent = await _pull_page(
                    client, flt, planner, sending, codec, events_topic
                )
                end_reasons[result.end_reason] += 1
                await delivered.confirmed()
                delivered = sending
                published += sent
                unreadable += page.unreadable
                planner.record(page)
            requests += planner.requests
            cap = planner.cap
            pulled = planner.coverage if pulled is None else pulled.merge(planner.coverage)
    await delivered.confirmed()
    merged = previous if pulled is None else previous.merge(pulled)
    method = "negentropy" if negentropy is not None and negentropy.supports(url) else "bisection"
    record = cursor_record(url, merged, updated_at_ms=int(time.time() * 1000), method=method)
    await producer.send_and_wait(
        settings.kafka.topic("sync-cursors"), codec.encode("SyncCursor", record), key=url.encode()
    )
    return SyncReport(
        url,
        requests,
        published,
        unreadable,
        pulled,
        merged,
        dict(end_reasons),
        cap=cap,
        negentropy=stats,
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


def page_limit(policy: SyncPolicy | None, max_limit: int | None) -> int:
    """Events asked for per request: the page size, lowered by the relay's NIP-11 limit."""
    limit = (policy or SyncPolicy()).page_size
    return min(limit, max_limit) if max_limit is not None and max_limit >= 1 else limit


def _count(stats: NegentropyStats, reconciliations: list[Reconciliation], fetched: int) -> None:
    for reconciliation in reconciliations:
        stats.rounds += reconciliation.rounds
        stats.needed += len(reconciliation.need)
        stats.bytes_sent += reconciliation.bytes_sent
        stats.bytes_received += reconciliation.bytes_received
    stats.fetched += fetched


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
    planner: WindowPlanner,
    deliveries: Deliveries,
    codec: Codec,
    topic: str,
) -> tuple[Page, SubscriptionResult, int]:
    """Send one REQ and publish each new event as it arrives, while the relay sends the next;
    also return how many were published.

    The planner's view of the answer is built from the objects the client decoded, without
    decoding the text again; the stream validator parses the text strictly. Events that cannot
    be parsed are published too and counted: they took a place within the relay's cap.
    """
    events: list[Event] = []
    unreadable = sent = 0
    with tracing.fetch_span(client.url, "page", flt.since, flt.until) as span:
        headers = tracing.headers_for_current_span()
        async with client.subscribe([flt]) as subscription:
            async for received in subscription:
                try:
                    event = event_from_object(received.fields)
                except InvalidEvent:
                    unreadable += 1
                else:
                    events.append(event)
                    if not planner.claim(event):
                        continue
                key = None if received.event_id is None else received.event_id.encode()
                value = raw_event_value(codec, client.url, received, SOURCE)
                await deliveries.send(topic, value, key=key, headers=headers)
                sent += 1
        result = subscription.result
        span.set_attribute(tracing.END_REASON, str(result.end_reason))
    eose = result.end_reason is EndReason.EOSE
    detail = "" if eose else f"{result.end_reason}: {result.detail}"
    page = Page(events, eose=eose, unreadable=unreadable, detail=detail)
    return page, result, sent


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
