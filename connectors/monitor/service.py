"""The monitor process: probe each relay of the current set once per interval, publish the facts.

The relay set is an input (`RelaySource`), so the same loop serves a fixed list from the command
line and, later, the relays Kafka assigns to this process. Every probe is published to `probes`,
keyed by relay URL, before the next round starts; with a key and target relays it also becomes a
signed kind 30166 event, and the monitor announces itself once with a kind 10166.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from contextlib import AsyncExitStack
from typing import Any

from bigbrotr.codec import Codec
from bigbrotr.config import MonitorSettings, Settings
from bigbrotr.nostr import Event, normalize_relay_url
from bigbrotr.observability.metrics import RELAY_PROBES
from bigbrotr.producer import Producer
from connectors.monitor.checks import CheckTimeouts
from connectors.monitor.geo import GeoDatabases
from connectors.monitor.nip66 import announcement_event, discovery_event
from connectors.monitor.probe import ProbeConfig, empty_probe, probe_relay
from connectors.monitor.publish import EventPublisher
from connectors.monitor.schedule import DueTracker

log = logging.getLogger(__name__)

RelaySource = Callable[[], Awaitable[Collection[str]]]
ProbeListener = Callable[[dict[str, Any]], None]
POLL_S = 5.0  # how often the relay set is asked again while nothing is due


def static_relays(urls: Iterable[str]) -> RelaySource:
    """A relay source that always gives the same (normalised) URLs."""
    fixed = frozenset(normalize_relay_url(url) for url in urls)

    async def current() -> Collection[str]:
        return fixed

    return current


def probe_config(settings: Settings, geo: GeoDatabases | None = None) -> ProbeConfig:
    """The probe settings of a `Settings`."""
    monitor = settings.monitor
    return ProbeConfig(
        timeouts=CheckTimeouts(
            open=monitor.open_timeout_s, read=monitor.read_timeout_s, write=monitor.write_timeout_s
        ),
        nip11_timeout=monitor.nip11_timeout_s,
        nip11_max_bytes=monitor.nip11_max_bytes,
        probe_timeout=monitor.probe_timeout_s,
        allow=tuple(settings.connectors.allow),
        proxy=settings.connectors.socks5_proxy,
        secret_key=_secret(monitor),
        geo=geo,
    )


def announced_checks(monitor: MonitorSettings) -> list[str]:
    """The NIP-66 check names this monitor runs, for its 10166 `c` tags."""
    checks = ["open", "read", "nip11", "dns", "ssl"]
    if monitor.secret_key is not None:
        checks.insert(2, "write")
    if monitor.geoip_city_database or monitor.geoip_asn_database:
        checks.append("geo")
    return checks


class Monitor:
    """Probes relays from `relays` on `settings.monitor`'s schedule; see `run`."""

    def __init__(
        self,
        settings: Settings,
        producer: Producer,
        relays: RelaySource,
        *,
        codec: Codec | None = None,
        on_probe: ProbeListener | None = None,
    ) -> None:
        self._settings = settings
        self._producer = producer
        self._relays = relays
        self._codec = codec or Codec(registry=settings.kafka.schema_registry_url)
        self._on_probe = on_probe
        self._topic = settings.kafka.topic("probes")
        self._tracker = DueTracker(settings.monitor.interval_s)

    @property
    def settings(self) -> Settings:
        return self._settings

    def reload(self, settings: Settings) -> None:
        """Take new rates, limits and relay lists (SIGHUP); the next round uses them."""
        self._settings = settings
        self._tracker.interval_s = settings.monitor.interval_s

    async def run(self, *, once: bool = False) -> int:
        """Probe until cancelled, or (with `once`) each relay of the set once; probes published."""
        monitor = self._settings.monitor
        key = _secret(monitor)
        async with AsyncExitStack() as stack:
            geo = stack.enter_context(
                GeoDatabases(monitor.geoip_city_database, monitor.geoip_asn_database)
            )
            config = probe_config(self._settings, geo)
            publisher = None
            if key is not None and monitor.publish_relays:
                publisher = await stack.enter_async_context(
                    EventPublisher(
                        monitor.publish_relays,
                        allow=config.allow,
                        proxy=config.proxy,
                        time_limit=monitor.write_timeout_s,
                    )
                )
                await publisher.publish(self._announcement(key))
            published = 0
            while True:
                config = probe_config(self._settings, geo)
                relays = await self._relays()
                due = self._tracker.due(relays, time.monotonic())
                published += await self._round(due, config, publisher)
                if once:
                    return published
                pause = self._tracker.seconds_until_next(relays, time.monotonic())
                await asyncio.sleep(min(max(pause, 0.1), POLL_S))

    async def _round(
        self, relays: list[str], config: ProbeConfig, publisher: EventPublisher | None
    ) -> int:
        gate = asyncio.Semaphore(self._settings.monitor.concurrency)

        async def one(url: str) -> None:
            async with gate:
                await self._probe_and_publish(url, config, publisher)

        async with asyncio.TaskGroup() as group:
            for url in relays:
                group.create_task(one(url))
        return len(relays)

    async def _probe_and_publish(
        self, url: str, config: ProbeConfig, publisher: EventPublisher | None
    ) -> None:
        started = time.monotonic()
        try:
            record = await probe_relay(url, config)
        except Exception as exc:  # a bug in a probe step must not stop the other relays
            log.exception("probe of %s failed unexpectedly", url)
            record = empty_probe(url, int(time.time() * 1000))
            record["errors"]["probe"] = f"internal error: {type(exc).__name__}: {exc}"
        self._tracker.probed(url, started)
        opened = (record["checks"]["open"] or {}).get("ok")
        RELAY_PROBES.labels("monitor", "up" if opened else "down").inc()
        value = self._codec.encode("RelayProbe", record)
        await self._producer.send_and_wait(self._topic, value, key=url.encode())
        if self._on_probe is not None:
            self._on_probe(record)
        key = config.secret_key
        if publisher is not None and key is not None and (record["checks"]["open"] or {}).get("ok"):
            await publisher.publish(discovery_event(key, record, int(time.time())))

    def _announcement(self, key: str) -> Event:
        monitor = self._settings.monitor
        timeouts = {
            "open": monitor.open_timeout_s,
            "read": monitor.read_timeout_s,
            "nip11": monitor.nip11_timeout_s,
        }
        if monitor.secret_key is not None:
            timeouts["write"] = monitor.write_timeout_s
        return announcement_event(
            key,
            int(time.time()),
            frequency_s=monitor.interval_s,
            timeouts_s=timeouts,
            checks=announced_checks(monitor),
        )


def _secret(monitor: MonitorSettings) -> str | None:
    return None if monitor.secret_key is None else monitor.secret_key.get_secret_value()
