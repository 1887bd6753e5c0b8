"""Put relays on the `relays` topic the way the finder does: RelayDiscovered keyed by URL."""

from __future__ import annotations

import time
from collections.abc import Iterable

from bigbrotr.codec import Codec
from bigbrotr.config import Settings
from bigbrotr.nostr import classify_network, normalize_relay_url, relay_host
from bigbrotr.producer import new_producer


async def announce_relays(settings: Settings, urls: Iterable[str], *, source: str = "test") -> None:
    codec = Codec()
    producer = new_producer(settings)
    await producer.start()
    try:
        for url in urls:
            normal = normalize_relay_url(url)
            value = codec.encode(
                "RelayDiscovered",
                {
                    "url": normal,
                    "network": str(classify_network(relay_host(normal))),
                    "source": source,
                    "discovered_at": int(time.time() * 1000),
                },
            )
            await producer.send_and_wait(settings.kafka.topic("relays"), value, key=normal.encode())
    finally:
        await producer.stop()


async def retire_relay(settings: Settings, url: str) -> None:
    """A tombstone: compaction forgets the relay, and whoever serves it stops."""
    producer = new_producer(settings)
    await producer.start()
    try:
        key = normalize_relay_url(url).encode()
        await producer.send_and_wait(settings.kafka.topic("relays"), None, key=key)
    finally:
        await producer.stop()
