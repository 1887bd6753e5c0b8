"""Keeps one relay followed: its history from the cursor, then a live subscription, for good.

A cycle pulls what the cursor leaves open (newest first, in windows that start at
`sync.first_chunk_s` and double, publishing the cursor after each, so a stop or a lost assignment
costs at most one window; what one window learned of the relay's answers saves the next one the
probe requests), then holds a live REQ (`since` the newest settled second, no `until`, at most
a page of stored events) and publishes each event as it arrives.

What reaches the relay while the history is pulled comes to the live REQ only as its stored
answer, which relays cut at their cap (newest first, silently). So while the cursor's newest
settled second is more than `sync.live_backlog_s` old, the newest part is pulled again (each pass
covers what arrived during the one before; at most `MAX_EXTRA_PASSES`), and a stored answer that
still reaches the cap ends the live session at once, leaving the rest to the next cycle's pages.

The live REQ is renewed every `sync.live_session_s`:
the next cycle pulls the history since it began, which moves the cursor forward. After any
failure (a dropped connection, a timeout, a refused REQ) the relay waits out a jittered backoff,
or a cool-down once its circuit opens, and the next cycle back-fills everything the cursor does
not settle: events that arrived live but were not yet settled are pulled again, and the stream
dedupes them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from bigbrotr.codec import Codec
from bigbrotr.config import Settings
from bigbrotr.nostr import Filter
from bigbrotr.observability import tracing
from bigbrotr.producer import Producer
from connectors.assignment import AssignedRelay
from connectors.backoff import Backoff, CircuitBreaker
from connectors.client import ClientLimits, EndReason, RelayClient
from connectors.negentropy_pull import NegentropyPuller, negentropy_limits
from connectors.slots import PullSlots
from connectors.sync import Coverage, Gap, RelayCap, SyncPolicy
from connectors.synchronizer import load_cursor, page_limit, raw_event_value, sync_relay

log = logging.getLogger("bigbrotr.sync")

LIVE_SOURCE = "live"
UNSETTLED = "pulled before every event of these seconds may have reached the relay"
MIN_CHUNK_S = 60
_MAX_UNACKED = 500
# Passes after a catch-up to close in on now; a relay always slower than that still goes live.
MAX_EXTRA_PASSES = 5
# How a live subscription ends when nothing is wrong: renewal time, or the per-REQ event bound.
_RENEWALS = frozenset({EndReason.TOTAL_TIMEOUT, EndReason.MAX_EVENTS})

MaxLimitLookup = Callable[[str], Awaitable[int | None]]
"""The relay's NIP-11 `limitation.max_limit`, or None when unknown; it caps the page size."""


async def no_max_limit(url: str) -> int | None:
    return None


class Phase(StrEnum):
    STARTING = "starting"
    HISTORY = "history"
    LIVE = "live"
    BACKOFF = "backoff"
    CIRCUIT_OPEN = "circuit_open"


@dataclass(slots=True)
class FollowerStatus:
    """What a follower is doing and has done; read by tests and status displays."""

    url: str
    phase: Phase = Phase.STARTING
    resumed_from: Coverage | None = None
    cursor: Coverage | None = None
    live_since: int | None = None
    history_published: int = 0
    live_published: int = 0
    failures: int = 0
    circuit_opened: int = 0
    last_error: str = ""


@dataclass(slots=True)
class FollowContext:
    """What every follower of one service shares; `reload` swaps the settings under them all."""

    settings: Settings
    producer: Producer
    codec: Codec
    slots: PullSlots
    max_limit: MaxLimitLookup = no_max_limit
    negentropy: NegentropyPuller | None = None
    backoff: Backoff = field(init=False)

    def __post_init__(self) -> None:
        self.reload(self.settings)

    def reload(self, settings: Settings) -> None:
        sync = settings.sync
        self.settings = settings
        self.backoff = Backoff(sync.backoff_base_s, sync.backoff_max_s)
        if self.negentropy is not None:
            self.negentropy.limits = negentropy_limits(sync)


class RelayFollower:
    """Run `await follower.run()` as a task; cancel it to stop (sockets are aborted at once)."""

    def __init__(self, relay: AssignedRelay, context: FollowContext, *, priority: bool) -> None:
        self.relay = relay
        self.priority = priority
        self.status = FollowerStatus(relay.url)
        self._context = context
        sync = context.settings.sync
        self._breaker = CircuitBreaker(sync.breaker_failures, sync.breaker_cooldown_s)
        self._chunk_s = sync.first_chunk_s
        self._cursor: Coverage | None = None
        self._edge: int | None = None
        self._cap = RelayCap()

    @property
    def _settings(self) -> Settings:
        """Read at each use: SIGHUP may have replaced them (`FollowContext.reload`)."""
        return self._context.settings

    def reload(self) -> None:
        """Take the context's new breaker bounds and first window (after SIGHUP)."""
        sync = self._settings.sync
        self._breaker.threshold = sync.breaker_failures
        self._breaker.cooldown_s = sync.breaker_cooldown_s
        self._chunk_s = sync.first_chunk_s

    async def run(self) -> None:
        loaded = full = False
        while True:
            try:
                if not loaded:
                    self._cursor = await self._load_cursor()
                    self.status.resumed_from = self.status.cursor = self._cursor
                    self._edge = None if self._cursor is None else self._cursor.complete_until
                    loaded = full = True
                failure = await self._close_in(full)
                if failure is None:
                    failure = await self._live()
            except Exception as exc:  # a relay's bug must not end its follower silently
                log.exception("%s: unexpected failure", self.relay.url)
                failure = f"{type(exc).__name__}: {exc}"
            if failure is None:
                self._breaker.record_success()
                self.status.failures = 0
                full = False
                continue
            full = True
            await self._wait_after(failure)

    async def _load_cursor(self) -> Coverage | None:
        """Read under a pull slot: a newly assigned share starts many followers at once."""
        async with self._context.slots.hold(self.relay.network, priority=self.priority):
            return await load_cursor(self._settings, self.relay.url)

    async def _wait_after(self, failure: str) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._breaker.record_failure(now)
        self.status.failures = self._breaker.failures
        self.status.last_error = failure
        retry_at = self._breaker.retry_at()
        if retry_at is not None and self._breaker.is_open(now):
            self.status.phase = Phase.CIRCUIT_OPEN
            self.status.circuit_opened += 1
            log.warning(
                "%s: circuit open for %.0fs after %d failures; last: %s",
                self.relay.url,
                retry_at - now,
                self._breaker.failures,
                failure,
            )
            await asyncio.sleep(retry_at - now)
            return
        delay = self._context.backoff.delay(self._breaker.failures)
        self.status.phase = Phase.BACKOFF
        log.info("%s: retrying in %.1fs after: %s", self.relay.url, delay, failure)
        await asyncio.sleep(delay)

    async def _close_in(self, full: bool) -> str | None:
        """Catch up, then pull the newest part again while the cursor is further behind now
        than `sync.live_backlog_s`, at most `MAX_EXTRA_PASSES` times; None when every window
        was answered, else why not.
        """
        # Learned afresh each cycle: a relay's cap may change between live sessions.
        self._cap = RelayCap()
        failure = await self._catch_up(full)
        passes = 0
        while failure is None and (behind := self._behind()) > self._settings.sync.live_backlog_s:
            if passes == MAX_EXTRA_PASSES:
                log.info(
                    "%s: still %.1fs behind after %d extra passes; following it live anyway",
                    self.relay.url,
                    behind,
                    passes,
                )
                break
            passes += 1
            failure = await self._catch_up(full=False)
        return failure

    def _behind(self) -> float:
        """Seconds since the cursor's newest settled second: what the live REQ's stored answer
        would have to hold."""
        span = None if self._cursor is None else self._cursor.span
        return 0.0 if span is None else time.time() - span[1]

    async def _catch_up(self, full: bool) -> str | None:
        """Pull what the cursor leaves open (only the newest part unless `full`); None when
        every window was answered, else why not.
        """
        cursor = self._cursor or Coverage()
        if self._edge is not None:
            cursor = self._cursor = reopened(cursor, self._edge)
        windows = cursor.next_windows(int(time.time()), self._settings.sync.history_since)
        if not full and cursor.span is not None:
            windows = windows[:1]
        for low, high in windows:
            for since, until in history_windows(low, high, self._chunk_s):
                failure, self._cap = await self._pull(since, until, self._cap)
                if failure is not None:
                    return failure
        self._edge = None if self._cursor is None else self._cursor.complete_until
        return None

    async def _pull(self, since: int, until: int, cap: RelayCap) -> tuple[str | None, RelayCap]:
        """Pull one window; why it failed (None when it did not), and the cap learned so far."""
        settings, sync = self._settings, self._settings.sync
        max_limit = await self._context.max_limit(self.relay.url)
        async with self._context.slots.hold(self.relay.network, priority=self.priority):
            self.status.phase = Phase.HISTORY
            try:
                async with asyncio.timeout(sync.chunk_timeout_s):
                    report = await sync_relay(
                        self.relay.url,
                        since=since,
                        until=until,
                        producer=self._context.producer,
                        codec=self._context.codec,
                        settings=settings,
                        cursor=self._cursor,
                        policy=self._policy,
                        max_limit=max_limit,
                        allow=settings.connectors.allow,
                        limits=ClientLimits(connect_timeout=sync.connect_timeout_s),
                        proxy=settings.connectors.socks5_proxy,
                        cap=cap,
                        negentropy=self._context.negentropy,
                    )
            except TimeoutError:
                self._chunk_s = max(MIN_CHUNK_S, self._chunk_s // 4)
                return f"pulling {since}..{until} took over {sync.chunk_timeout_s:g}s", cap
        self._cursor = self.status.cursor = report.cursor
        self.status.history_published += report.published
        unanswered = sum(n for reason, n in report.end_reasons.items() if reason != EndReason.EOSE)
        if unanswered:
            reason = report.gaps[-1].reason if report.gaps else "no reason given"
            return f"{unanswered} of {report.requests} requests unanswered: {reason}", report.cap
        return None, report.cap

    @property
    def _policy(self) -> SyncPolicy:
        return SyncPolicy(page_size=self._settings.connectors.page_size)

    async def _live(self) -> str | None:
        """Hold one live subscription until it is due for renewal; None when it ended so.

        Its stored answer is asked for at most a page; one that fills a page, or the relay's cap
        where a probe showed it, may have been cut, so the session ends there as a renewal.
        """
        settings, sync = self._settings, self._settings.sync
        span = None if self._cursor is None else self._cursor.span
        since = int(time.time()) if span is None else span[1]
        limit = page_limit(self._policy, await self._context.max_limit(self.relay.url))
        cut_at = stored_answer_cap(limit, self._cap)
        stored: int | None = 0  # stored events received; None once EOSE came
        limits = ClientLimits(
            connect_timeout=sync.connect_timeout_s, total_timeout=sync.live_session_s
        )
        topic = settings.kafka.topic("events.raw")
        codec = self._context.codec
        deliveries = self._context.producer.deliveries()
        unconfirmed = 0
        async with RelayClient(
            self.relay.url,
            limits=limits,
            allow=settings.connectors.allow,
            proxy=settings.connectors.socks5_proxy,
        ) as client:
            with tracing.fetch_span(self.relay.url, "live", since):
                headers = tracing.headers_for_current_span()
                live_filter = Filter(since=since, limit=limit)
                async with client.subscribe([live_filter], live=True) as subscription:
                    if client.connected:
                        self.status.phase = Phase.LIVE
                        self.status.live_since = since
                    async for received in subscription:
                        value = raw_event_value(codec, self.relay.url, received, LIVE_SOURCE)
                        key = None if received.event_id is None else received.event_id.encode()
                        await deliveries.send(topic, value, key=key, headers=headers)
                        self.status.live_published += 1
                        unconfirmed += 1
                        if unconfirmed >= _MAX_UNACKED:
                            await deliveries.confirmed()
                            unconfirmed = 0
                        if stored is not None:
                            stored = None if subscription.result.eose_ms is not None else stored + 1
                            if stored == cut_at:
                                break
            result = subscription.result
        await deliveries.confirmed()
        if stored == cut_at:
            log.warning(
                "%s: the live REQ's stored answer reached %d events, all the relay may send; "
                "ending the session so that the next pull pages what it may have cut",
                self.relay.url,
                cut_at,
            )
            return None
        if result.end_reason in _RENEWALS:
            return None
        if result.eose_ms is not None:
            # The relay answered before it failed: this failure starts a new streak.
            self._breaker.record_success()
        return f"live subscription ended: {result.end_reason}: {result.detail}"


def stored_answer_cap(limit: int, cap: RelayCap) -> int:
    """The size at which a stored answer asked for `limit` events may have been cut: `limit`, or
    the relay's own cap once a probe showed it (`cap.floor` of a probed cap). An unprobed floor
    is only the largest answer seen so far: cutting there would end busy sessions for nothing.
    """
    return min(limit, cap.floor) if cap.probed and cap.floor else limit


def reopened(coverage: Coverage, second: int) -> Coverage:
    """`coverage` with `second..complete_until` unsettled again, as a gap.

    A window's newest second is pulled while events created in it may still reach the relay.
    The cursor re-pulls its `complete_until` for that reason, but a failed pull of newer seconds
    moves `complete_until` on; reopening from the last second a successful pull ended on keeps
    those late events from being skipped.
    """
    span = coverage.span
    if span is None or second > span[1]:
        return coverage
    since, until = span
    second = max(second, since)
    kept = [gap for gap in coverage.gaps if gap.until < second]
    kept += [
        Gap(gap.since, second - 1, gap.reason)
        for gap in coverage.gaps
        if gap.since < second <= gap.until
    ]
    return Coverage(since, until, (*kept, Gap(second, until, UNSETTLED)))


def history_windows(low: int, high: int, first: int) -> Iterator[tuple[int, int]]:
    """`low..high` in windows, newest first, each twice as long as the one before."""
    size, top = first, high
    while top >= low:
        bottom = max(low, top - size + 1)
        yield bottom, top
        top, size = bottom - 1, size * 2
