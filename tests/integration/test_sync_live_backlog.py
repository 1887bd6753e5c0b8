"""Events that reach a relay while its catch-up runs: the live REQ after it gets them only as its
stored answer, which the relay cuts at its cap (LocalRelay: 500, newest first).

`Arrivals` publishes more than that cap while the first history window is pulled, to a real
LocalRelay followed by the real sync service, with `live_session_s` far beyond the test: a renewal
cannot be what brings the older events in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from bigbrotr.config import Settings
from bigbrotr.nostr import sign_event
from bigbrotr.topics import create_topics
from connectors.follower import MAX_EXTRA_PASSES
from connectors.sync_service import SyncService
from tests.support.announce import announce_relays
from tests.support.events import TEST_KEYS, make_events
from tests.support.loader import load_events
from tests.support.raw_topic import RawTail
from tests.support.relays import local_relay
from tests.support.sync_service import live, running, service_settings
from tests.support.topic_read import read_to_end
from tests.support.waiting import until

pytestmark = pytest.mark.integration

ARRIVING = 1200  # well over LocalRelay's 500 events per answer
SESSION_S = 600  # no live session is renewed within a test
ARRIVED_WITHIN_S = 30.0


class Arrivals:
    """A `MaxLimitLookup` (asked before each history window and each live session) that, when
    first asked, publishes `count` events created now to the relay at `per_second`: they arrive
    while the catch-up's first window waits for it. It knows no NIP-11 limit.
    """

    def __init__(self, relay_url: str, count: int, per_second: int) -> None:
        self._relay_url = relay_url
        self._count = count
        self._per_second = per_second
        self.ids: set[str] = set()
        self.calls = 0

    async def __call__(self, url: str) -> int | None:
        self.calls += 1
        if self.calls == 1:
            loop = asyncio.get_running_loop()
            for start in range(0, self._count, self._per_second):
                tick = loop.time() + 1.0
                now = int(time.time())
                batch = [
                    sign_event(TEST_KEYS[n % len(TEST_KEYS)], now, 1, [], f"arriving {n} {now}")
                    for n in range(start, min(start + self._per_second, self._count))
                ]
                self.ids |= await load_events(self._relay_url, batch)
                await asyncio.sleep(tick - loop.time())
            assert len(self.ids) == self._count
        return None


async def follow_while_arriving(
    settings: Settings, tmp_path: Path, arrivals_per_second: int, **sync: float
) -> tuple[Arrivals, RawTail, str]:
    """Follow a LocalRelay that receives `ARRIVING` events during its first catch-up, until all
    of them are in `events.raw`; the arrivals, the tail and the relay URL.
    """
    with local_relay(tmp_path / "busy") as relay:
        await load_events(relay.url, make_events(40, label="before"))
        arrivals = Arrivals(relay.url, ARRIVING, arrivals_per_second)
        config = service_settings(settings, [relay.host_port], live_session_s=SESSION_S, **sync)
        create_topics(config.kafka)
        await announce_relays(config, [relay.url])
        service = SyncService(config, max_limit=arrivals)
        async with RawTail(config) as tail, running(service):
            await until(lambda: arrivals.calls > 0, "the catch-up starts")
            await until(lambda: arrivals.ids != set(), "the events arrive", within=60)
            await until(
                lambda: arrivals.ids <= tail.ids(relay.url),
                "every event that arrived during the catch-up is in events.raw",
                within=ARRIVED_WITHIN_S,
            )
            await until(lambda: live(service, {relay.url}), "the relay is followed live")
    return arrivals, tail, relay.url


async def test_what_arrives_during_a_long_catch_up_is_pulled_before_going_live(
    settings: Settings, tmp_path: Path
) -> None:
    """6 s of arrivals (200/s) hold the first window: the cursor is then over
    `sync.live_backlog_s` (default 5 s) behind, so the newest part is pulled again, paged,
    instead of being left to a live REQ answered with only the newest 500.
    """
    arrivals, tail, url = await follow_while_arriving(settings, tmp_path, 200)
    assert arrivals.ids <= tail.ids(url, source="sync")
    assert not arrivals.ids & tail.ids(url, source="live"), "the live backlog held none of them"


async def test_a_live_backlog_at_the_cap_ends_the_session_for_a_paged_pull(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With the extra passes out of the way (`live_backlog_s` an hour), the live REQ's stored
    answer reaches the cap: the session ends at once, and the next pull pages the rest.
    """
    caplog.set_level(logging.WARNING, logger="bigbrotr.sync")
    arrivals, tail, url = await follow_while_arriving(settings, tmp_path, 600, live_backlog_s=3600)
    from_live = arrivals.ids & tail.ids(url, source="live")
    assert len(from_live) == 500, "the live REQ's stored answer: the newest 500"
    assert arrivals.ids - from_live <= tail.ids(url, source="sync")
    cut = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(url in message and "500" in message for message in cut), cut


async def test_a_relay_always_behind_goes_live_after_the_bounded_extra_passes(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No pass can end within 1 ms of its newest second: each one is followed by another, up to
    `MAX_EXTRA_PASSES`, then the relay is followed live anyway, and the log says so.
    """
    caplog.set_level(logging.INFO, logger="bigbrotr.sync")
    with local_relay(tmp_path / "behind") as relay:
        await load_events(relay.url, make_events(3, since=int(time.time()) - 30, label="few"))
        config = service_settings(
            settings,
            [relay.host_port],
            history_since=int(time.time()) - 60,
            live_session_s=SESSION_S,
            live_backlog_s=0.001,
        )
        create_topics(config.kafka)
        await announce_relays(config, [relay.url])
        service = SyncService(config)
        async with running(service):
            await until(lambda: live(service, {relay.url}), "the relay is followed live")
    windows, _ = await read_to_end(config, "sync-cursors")  # one cursor per window pulled
    assert len(windows) == 1 + MAX_EXTRA_PASSES, "the first window, then the extra passes"
    bounded = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(f"after {MAX_EXTRA_PASSES} extra passes" in message for message in bounded), bounded
