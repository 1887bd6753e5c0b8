"""The sync service on a real broker and real relays: relays shared by the consumer group, history
then live events, back-fill after a cut, circuits for dead relays, and a prompt SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bigbrotr.config import Settings
from bigbrotr.nostr import Filter, sign_event
from bigbrotr.topics import create_topics
from connectors.client import RelayClient, Subscription
from connectors.follower import Phase
from connectors.max_limit import Nip11MaxLimit
from connectors.sync_service import SyncService
from connectors.synchronizer import load_cursor
from tests.support.announce import announce_relays
from tests.support.cli import BIGBROTR
from tests.support.events import BASE_TIME, TEST_KEYS, make_events
from tests.support.hostile_relay import Behaviour, HostileRelay
from tests.support.loader import load_events
from tests.support.raw_topic import RawTail
from tests.support.relays import LOW_CAP, RunningRelay, local_relay, nostr_relay
from tests.support.sync_service import live, running, service_settings
from tests.support.tcp_proxy import CuttableProxy
from tests.support.waiting import until, until_answered

pytestmark = pytest.mark.integration

RELAYS = 3
EVENTS_PER_RELAY = 40
# The bound. Measured from before the event is published (the publisher's round trip
# included) to when a consumer of events.raw holds it: an upper bound of relay -> events.raw.
LIVE_BOUND_S = 1.0


@dataclass
class Fleet:
    """LocalRelays and the ids each holds (tests that publish add theirs)."""

    relays: list[RunningRelay]
    held: dict[str, set[str]] = field(default_factory=dict)

    @property
    def urls(self) -> list[str]:
        return [relay.url for relay in self.relays]

    async def publish(self, url: str, count: int, label: str) -> list[str]:
        """Sign `count` events created now and store them on the relay; their ids."""
        now = int(time.time())
        events = [
            sign_event(TEST_KEYS[n % len(TEST_KEYS)], now, 1, [], f"{label} {n} {now}")
            for n in range(count)
        ]
        accepted = await load_events(url, events)
        assert accepted == {event.id for event in events}
        self.held.setdefault(url, set()).update(accepted)
        return [event.id for event in events]


@pytest.fixture(scope="module")
async def fleet(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fleet]:
    with contextlib.ExitStack() as stack:
        relays = [
            stack.enter_context(local_relay(tmp_path_factory.mktemp(f"service-{n}")))
            for n in range(RELAYS)
        ]
        fleet = Fleet(relays)
        for n, relay in enumerate(relays):
            events = make_events(EVENTS_PER_RELAY, label=f"service relay {n}")
            fleet.held[relay.url] = await load_events(relay.url, events)
            assert len(fleet.held[relay.url]) == EVENTS_PER_RELAY
        yield fleet


async def test_two_services_share_the_relays_and_one_takes_over_from_the_cursors(
    fleet: Fleet, settings: Settings
) -> None:
    config = service_settings(settings, [r.host_port for r in fleet.relays])
    create_topics(config.kafka)
    await announce_relays(config, fleet.urls)
    everything = set(fleet.urls)
    first, second = SyncService(config), SyncService(config)
    async with (
        RawTail(config) as tail,
        running(first) as first_task,
        running(second) as second_task,
    ):
        await until(
            lambda: (
                first.serving | second.serving == everything
                and live(first, set(first.serving))
                and live(second, set(second.serving))
            ),
            "both services follow their relays live",
        )
        assert not first.serving & second.serving, "a relay is served by exactly one process"
        await until(
            lambda: all(tail.ids(url) == fleet.held[url] for url in everything),
            "every relay's events reach events.raw",
        )
        for url in everything:
            assert tail.ids(url) == fleet.held[url]

        leaving, staying = (first, second) if first.serving else (second, first)
        moved = set(leaving.serving)
        cursors = {url: status.cursor for url, status in leaving.statuses.items()}
        assert all(c is not None and c.span is not None for c in cursors.values())
        leaving.stop()
        async with asyncio.timeout(30):
            await (first_task if leaving is first else second_task)
        assert leaving.serving == frozenset()
        await until(
            lambda: staying.serving == everything and live(staying, everything),
            "the remaining service follows every relay",
        )
        for url in moved:
            status = staying.statuses[url]
            assert status.resumed_from == cursors[url], "takes over from the published cursor"
            assert status.history_published == 0, "nothing settled is pulled again"
        new_ids = await fleet.publish(sorted(moved)[0], 3, "after takeover")
        await until(lambda: set(new_ids) <= tail.ids(), "the new owner publishes live events")
        for url in everything:
            assert tail.ids(url) == fleet.held[url]


async def test_live_events_reach_events_raw_within_a_second_or_so(
    fleet: Fleet, settings: Settings
) -> None:
    relay = fleet.relays[0]
    config = service_settings(settings, [relay.host_port])
    create_topics(config.kafka)
    await announce_relays(config, [relay.url])
    service = SyncService(config)
    async with RawTail(config) as tail, running(service):
        await until(lambda: live(service, {relay.url}), "the relay is followed live")
        latencies, sent_ids = [], []
        for n in range(5):
            sent = time.monotonic()
            (event_id,) = await fleet.publish(relay.url, 1, f"latency {n}")
            await until(lambda: tail.arrival(event_id) is not None, "the live event arrives")  # noqa: B023
            arrived = tail.arrival(event_id)
            assert arrived is not None
            latencies.append(arrived - sent)
            sent_ids.append(event_id)
        assert set(sent_ids) <= tail.ids(relay.url, source="live")
    print(f"\nrelay -> events.raw live latency (s): {', '.join(f'{x:.3f}' for x in latencies)}")
    assert max(latencies) < LIVE_BOUND_S


async def test_after_a_cut_the_gap_is_back_filled(fleet: Fleet, settings: Settings) -> None:
    relay = fleet.relays[1]
    port = int(relay.host_port.rsplit(":", 1)[1])
    async with CuttableProxy(port) as proxy:
        url = f"ws://{proxy.host_port}"
        config = service_settings(settings, [proxy.host_port])
        create_topics(config.kafka)
        await announce_relays(config, [url])
        service = SyncService(config)
        async with RawTail(config) as tail, running(service):
            await until(lambda: live(service, {url}), "the relay is followed live")
            await proxy.cut()
            await until(
                lambda: service.statuses[url].phase is not Phase.LIVE, "the follower sees the cut"
            )
            missed = await fleet.publish(relay.url, 4, "while cut")
            await asyncio.sleep(0.5)
            assert not set(missed) & tail.ids(), "nothing can arrive while the relay is cut off"
            await proxy.restore()
            await until(lambda: set(missed) <= tail.ids(url), "the gap is back-filled")
            assert set(missed) <= tail.ids(url, source="sync")
            await until(lambda: live(service, {url}), "the relay is followed live again")
            assert "connect_failed" in service.statuses[url].last_error
            assert tail.ids(url) == fleet.held[relay.url]


async def test_pages_follow_the_relays_nip11_max_limit(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LocalRelay capped at LOW_CAP, behind a front that advertises that cap in NIP-11: every
    history REQ asks for at most LOW_CAP events, not the configured page of 500.
    """
    asked: list[Filter] = []
    subscribe = RelayClient.subscribe

    def recording(client: RelayClient, filters: Sequence[Filter], **kw: Any) -> Subscription:
        asked.extend(filters)
        return subscribe(client, filters, **kw)

    monkeypatch.setattr(RelayClient, "subscribe", recording)
    nip11 = {"name": "capped", "limitation": {"max_limit": LOW_CAP}}
    with local_relay(tmp_path / "capped", max_limit=LOW_CAP) as relay:
        held = await load_events(relay.url, make_events(3 * LOW_CAP, label="nip-11 capped"))
        port = int(relay.host_port.rsplit(":", 1)[1])
        async with CuttableProxy(port, nip11=nip11) as front:
            url = f"ws://{front.host_port}"
            config = service_settings(settings, [front.host_port])
            create_topics(config.kafka)
            await announce_relays(config, [url])
            service = SyncService(config, max_limit=Nip11MaxLimit(config))
            async with RawTail(config) as tail, running(service):
                await until(lambda: live(service, {url}), "the relay is followed live")
                await until(lambda: tail.ids(url) == held, "the whole history is published")
    history = [flt for flt in asked if flt.until is not None]
    assert history, "history was pulled"
    assert all(flt.limit is not None and flt.limit <= LOW_CAP for flt in history)
    assert any(flt.limit == LOW_CAP for flt in history)


async def test_history_over_many_windows_is_published_once_per_event(
    settings: Settings, tmp_path: Path
) -> None:
    """nostr-relay pulled in a dozen windows of doubling length: each event of its history is in
    `events.raw` once (each window used to probe the cap again, re-sending the newest page).
    """
    events = make_events(EVENTS_PER_RELAY, label="once per event")
    with nostr_relay(tmp_path / "once") as relay:
        held = await load_events(relay.url, events)
        config = service_settings(settings, [relay.host_port], first_chunk_s=86_400)
        create_topics(config.kafka)
        await announce_relays(config, [relay.url])
        service = SyncService(config)
        async with RawTail(config) as tail, running(service):
            await until(lambda: live(service, {relay.url}), "the relay is followed live")
            await until(lambda: tail.ids(relay.url) == held, "the whole history is published")
    published = [record.event_id for record in tail.records if record.source == "sync"]
    assert sorted(published) == sorted(held)


async def test_a_pull_past_its_chunk_timeout_is_cancelled_with_its_socket(
    settings: Settings,
) -> None:
    """A relay dripping events forever holds the pull until `chunk_timeout_s` cancels it; the
    socket goes with it, so the relay stops sending.
    """
    events = make_events(100, label="drip")  # 5 s of dripping, well past the 1 s bound
    async with HostileRelay(events, drip_interval=0.05) as dripping:
        url = dripping.url_for(Behaviour.SLOW_DRIP)
        config = service_settings(
            settings,
            [dripping.host_port],
            chunk_timeout_s=1,
            breaker_failures=1,
            breaker_cooldown_s=600,
        )
        create_topics(config.kafka)
        await announce_relays(config, [url])
        service = SyncService(config)
        async with running(service):
            await until(
                lambda: url in service.statuses and service.statuses[url].phase is Phase.HISTORY,
                "the pull starts",
            )
            started = time.monotonic()
            await until(
                lambda: service.statuses[url].phase is Phase.CIRCUIT_OPEN, "the pull is cancelled"
            )
            took = time.monotonic() - started
            assert "took over 1s" in service.statuses[url].last_error
            await asyncio.sleep(0.3)
            sent = len(dripping.sent_events)
            assert sent < len(events) - 20, "the relay would still be dripping"
            await asyncio.sleep(0.6)
            assert len(dripping.sent_events) == sent, "the cancelled pull's socket is closed"
            assert dripping.connections == 1
    assert 0.9 < took < 3.0


async def test_dead_relays_open_their_circuit_without_holding_up_the_others(
    fleet: Fleet, settings: Settings
) -> None:
    good = fleet.relays[2]
    dead_port = CuttableProxy(1).port  # a free port nobody listens on
    async with HostileRelay(make_events(5, label="stall")) as stalling:
        dead = f"ws://127.0.0.1:{dead_port}"
        stall = stalling.url_for(Behaviour.STALL)
        config = service_settings(
            settings,
            [good.host_port, f"127.0.0.1:{dead_port}", stalling.host_port],
            max_concurrent=1,
            breaker_failures=2,
            breaker_cooldown_s=600,
            connect_timeout_s=1,
        )
        create_topics(config.kafka)
        await announce_relays(config, [dead, stall, good.url])
        service = SyncService(config)
        async with RawTail(config) as tail, running(service):
            await until(
                lambda: (
                    {dead, stall} <= set(service.statuses)
                    and all(service.statuses[u].phase is Phase.CIRCUIT_OPEN for u in (dead, stall))
                ),
                "both dead relays have their circuit open",
            )
            await until(lambda: live(service, {good.url}), "the good relay is followed live")
            assert tail.ids(good.url) == fleet.held[good.url]
            for url in (dead, stall):
                status = service.statuses[url]
                assert status.circuit_opened == 1
                assert status.failures == 2
                assert "connect_failed" in status.last_error
            connections = stalling.connections
            await asyncio.sleep(1.0)
            assert stalling.connections == connections, "an open circuit is not dialled"


@pytest.fixture
def cli_env(settings: Settings, fleet: Fleet) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BIGBROTR_")}
    allow = ",".join(f'"{relay.host_port}"' for relay in fleet.relays)
    return {
        **clean,
        "BIGBROTR_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "BIGBROTR_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
        "BIGBROTR_CONNECTORS__ALLOW": f"[{allow}]",
        "BIGBROTR_SYNC__HISTORY_SINCE": str(BASE_TIME),
    }


async def test_sigterm_stops_the_service_promptly(
    fleet: Fleet, settings: Settings, cli_env: dict[str, str], tmp_path: Path
) -> None:
    create_topics(settings.kafka)
    await announce_relays(settings, fleet.urls)
    process = await asyncio.create_subprocess_exec(
        *BIGBROTR,
        "sync",
        env=cli_env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with RawTail(settings) as tail:
            await until(
                lambda: (
                    all(tail.ids(url) == fleet.held[url] for url in fleet.urls)
                    or process.returncode is not None
                ),
                "the service publishes every relay's history",
            )
        assert process.returncode is None, "the service exited on its own"
        await asyncio.sleep(0.5)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            output = (await process.communicate())[0].decode()
        took = time.monotonic() - started
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    print(f"\nSIGTERM to exit: {took:.2f}s")
    assert process.returncode == 0, output
    assert "sync service stopped" in output
    assert took < 10.0


class SyncProcess:
    """A `bigbrotr sync` process; `following` is the relays its log says it follows now."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.following: set[str] = set()
        self.output: list[str] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, env: dict[str, str], cwd: Path) -> SyncProcess:
        process = await asyncio.create_subprocess_exec(
            *BIGBROTR,
            "sync",
            env=env,
            cwd=cwd,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            line = raw.decode().rstrip()
            self.output.append(line)
            if " bigbrotr.sync: following " in line:
                self.following.add(line.rsplit(" ", 1)[1])
            elif " bigbrotr.sync: stopped following " in line:
                self.following -= set(line.split(" stopped following ", 1)[1].split())

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            code = await self.process.wait()
            await self._reader
        return code

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


async def history_settled(settings: Settings, url: str) -> bool:
    cursor = await load_cursor(settings, url)
    return cursor is not None and cursor.span is not None and cursor.span[0] <= BASE_TIME


async def test_two_sync_processes_share_the_relays_and_one_takes_over_from_the_cursors(
    fleet: Fleet, settings: Settings, cli_env: dict[str, str], tmp_path: Path
) -> None:
    create_topics(settings.kafka)
    await announce_relays(settings, fleet.urls)
    everything = set(fleet.urls)
    history = {
        url: {event.id for event in make_events(EVENTS_PER_RELAY, label=f"service relay {n}")}
        for n, url in enumerate(fleet.urls)
    }
    processes: list[SyncProcess] = []
    try:
        async with RawTail(settings) as tail:
            for _ in range(2):
                processes.append(await SyncProcess.start(cli_env, tmp_path))
            first, second = processes
            await until(
                lambda: (
                    first.following | second.following == everything
                    and all(tail.ids(url) == fleet.held[url] for url in everything)
                    and sum("assigned partitions" in line for line in first.output) >= 1
                    and sum("assigned partitions" in line for line in second.output) >= 1
                ),
                "two processes split the relays and publish every relay's history",
            )
            assert not first.following & second.following, "each relay is served by one"
            for url in everything:  # the cursor follows the window's events onto Kafka
                await until_answered(
                    lambda url=url: history_settled(settings, url), f"{url}'s cursor settles"
                )

            leaving, staying = sorted(processes, key=lambda p: len(p.following), reverse=True)
            moved = set(leaving.following)
            assert moved
            takeover = len(tail.records)
            assert await leaving.stop() == 0, "\n".join(leaving.output)
            await until(
                lambda: staying.following == everything, "the other process takes every relay"
            )
            new_ids = set(await fleet.publish(sorted(moved)[0], 3, "after process takeover"))
            await until(lambda: new_ids <= tail.ids(), "the new owner publishes new events")
            again = {r.event_id for r in tail.records[takeover:] if r.relay_url in moved}
            for url in moved:
                assert not again & history[url], "the new owner resumes from the cursor"
            for url in everything:
                assert tail.ids(url) == fleet.held[url]
    finally:
        for process in processes:
            process.kill()
        for process in processes:
            await process.process.wait()


async def test_without_kafka_the_service_says_so_in_one_line(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BIGBROTR_")}
    process = await asyncio.create_subprocess_exec(
        *BIGBROTR,
        "sync",
        env={**clean, "COLUMNS": "200", "BIGBROTR_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:9"},
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        _, stderr = await process.communicate()
    assert process.returncode == 1
    output = stderr.decode().strip()
    assert output.splitlines()[-1].startswith("error: cannot reach Kafka at 127.0.0.1:9"), output
    assert "Traceback" not in output
