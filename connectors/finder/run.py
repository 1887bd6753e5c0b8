"""The finder: gathers relay URLs, keeps the unknown ones as candidates, probes the due ones, and
publishes those that speak NIP-01 to `relays`.

State is event-sourced: `relays` says which URLs are known, `relay-candidates` holds each
candidate's retries, and the `events` position is committed only after the candidates an events
batch yielded are on the log. A restarted finder rebuilds everything from those topics. It is meant
to run as one process: its candidate table lives in that process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import httpx

from bigbrotr.codec import Codec
from bigbrotr.config import Settings
from bigbrotr.errors import CodecError, SourceError
from bigbrotr.nostr import Network
from bigbrotr.observability.metrics import RELAY_PROBES
from bigbrotr.producer import Producer, new_producer
from connectors.finder.candidate import Candidate, RetryPolicy, Status, candidate_from_record
from connectors.finder.compacted import read_table
from connectors.finder.events import EventsReader
from connectors.finder.extract import relay_urls_in_event
from connectors.finder.probe import ProbeResult, probe_relay
from connectors.finder.screen import Screened, screen_url
from connectors.finder.sources import fetch_url_list, read_seed

log = logging.getLogger("bigbrotr.finder")

SEED_SOURCE = "seed"
BAD_EVENT_RECORD = "bad_event_record"
_PROGRESS_EVERY = 100
_NOT_STARTED = "the finder is not started; use it as `async with Finder(settings) as finder:`"

Found = tuple[str, str]  # (text that may be a relay URL, where it was found)
Clock = Callable[[], float]


@dataclass(slots=True)
class PassReport:
    """What one pass did. `skipped` counts found text that is no usable URL, by reason;
    `source_errors` are the sources that could not be read (asked again later).
    """

    found: int = 0
    new_candidates: int = 0
    due: int = 0
    probed: int = 0
    accepted: int = 0
    retired: int = 0
    pending: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    source_errors: list[str] = field(default_factory=list)


class Finder:
    """`async with Finder(settings) as finder:` then `await finder.run_pass()` or `run_forever`."""

    def __init__(self, settings: Settings, *, clock: Clock = time.time) -> None:
        self.reload(settings)
        self._clock = clock
        self._codec = Codec(registry=settings.kafka.schema_registry_url)
        self._relays_topic = settings.kafka.topic("relays")
        self._candidates_topic = settings.kafka.topic("relay-candidates")
        self._stack = AsyncExitStack()
        self._producer: Producer | None = None
        self._http: httpx.AsyncClient | None = None
        self._events: EventsReader | None = None
        self.known: set[str] = set()
        self.retired: set[str] = set()
        self.pending: dict[str, Candidate] = {}
        self._seed_read = False
        self._http_read_at: float | None = None

    @property
    def settings(self) -> Settings:
        return self._settings

    def reload(self, settings: Settings) -> None:
        """Take new sources, rates and limits (SIGHUP); the next pass uses them."""
        self._settings = settings
        self._finder = settings.finder
        self._allow = tuple(settings.connectors.allow)
        self._policy = RetryPolicy(
            max_attempts=self._finder.max_attempts,
            delay_s=self._finder.retry_delay_s,
            backoff=self._finder.retry_backoff,
            max_delay_s=self._finder.retry_max_delay_s,
        )

    async def __aenter__(self) -> Self:
        async with AsyncExitStack() as stack:
            producer = new_producer(self._settings)
            await producer.start()
            stack.push_async_callback(producer.stop)
            self._http = await stack.enter_async_context(
                httpx.AsyncClient(follow_redirects=True, max_redirects=3)
            )
            await self._load_state()
            if self._finder.read_events:
                self._events = await stack.enter_async_context(EventsReader(self._settings))
            self._producer = producer
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._producer = self._http = self._events = None
        await self._stack.aclose()

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Pass after pass until `stop` is set; waits `interval_s` between passes, less when a
        candidate falls due sooner.
        """
        while not stop.is_set():
            await self.run_pass()
            pause = self._finder.interval_s
            due = [c.next_attempt_at for c in self.pending.values() if c.next_attempt_at]
            if due:
                pause = min(pause, max(0.0, min(due) / 1000 - self._clock()))
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=pause)

    async def run_pass(self) -> PassReport:
        """Gather from every source that is due, record the new candidates, probe the due ones."""
        report = PassReport()
        if not self._seed_read and self._finder.seed_path is not None:
            await self._admit(
                ((url, SEED_SOURCE) for url in read_seed(self._finder.seed_path)), report
            )
            self._seed_read = True
        if self._http_due():
            await self._admit(await self._read_http(report), report)
            self._http_read_at = self._clock()
        if self._events is not None:
            async for batch in self._events.new():
                await self._admit(self._urls_in_records(batch, report), report)
                await self._events.commit()
        await self._probe_due(report)
        report.pending = len(self.pending)
        log.info(
            "finder pass: %d found, %d new candidate(s), %d due, %d probed, %d accepted, "
            "%d retired, %d pending, %d known relay(s); skipped %s",
            report.found,
            report.new_candidates,
            report.due,
            report.probed,
            report.accepted,
            report.retired,
            report.pending,
            len(self.known),
            dict(report.skipped) or "none",
        )
        return report

    async def _load_state(self) -> None:
        bootstrap = self._settings.kafka.bootstrap_servers
        relays = await read_table(bootstrap, self._relays_topic)
        self.known = {key.decode(errors="replace") for key in relays}
        for value in (await read_table(bootstrap, self._candidates_topic)).values():
            try:
                candidate = candidate_from_record(self._codec.decode("RelayCandidate", value))
            except CodecError as exc:
                log.warning("skipping an unreadable record of %s: %s", self._candidates_topic, exc)
                continue
            self._restore(candidate)
        log.info(
            "finder state: %d known relay(s), %d pending candidate(s), %d retired",
            len(self.known),
            len(self.pending),
            len(self.retired),
        )

    def _restore(self, candidate: Candidate) -> None:
        if candidate.status is Status.ACCEPTED:
            self.known.add(candidate.url)
        elif candidate.status is Status.RETIRED:
            self.retired.add(candidate.url)
        elif candidate.url not in self.known:
            self.pending[candidate.url] = candidate

    async def _admit(self, found: Iterable[Found], report: PassReport) -> None:
        """Screen found text; record every URL not seen before as a pending candidate."""
        now_ms = self._now_ms()
        new: list[Candidate] = []
        for text, source in found:
            report.found += 1
            screened = screen_url(text, self._allow)
            if not isinstance(screened, Screened):
                report.skipped[screened.reason] += 1
                log.debug("skipped %r from %s: %s", text[:200], source, screened.detail)
                continue
            url = screened.url
            if url in self.known or url in self.pending or url in self.retired:
                continue
            candidate = Candidate.discovered(url, screened.network, source, now_ms)
            self.pending[url] = candidate
            new.append(candidate)
        producer = self._running_producer()
        sends = [
            await producer.send(
                self._candidates_topic,
                self._codec.encode("RelayCandidate", candidate.record()),
                key=candidate.url.encode(),
            )
            for candidate in new
        ]
        await asyncio.gather(*sends)
        report.new_candidates += len(new)

    def _http_due(self) -> bool:
        if not self._finder.http_sources:
            return False
        last = self._http_read_at
        return last is None or self._clock() - last >= self._finder.http_refresh_s

    async def _read_http(self, report: PassReport) -> list[Found]:
        found: list[Found] = []
        for url in self._finder.http_sources:
            try:
                urls = await fetch_url_list(
                    self._running_http(),
                    url,
                    timeout_s=self._finder.http_timeout_s,
                    max_bytes=self._finder.http_max_bytes,
                )
            except SourceError as exc:
                log.warning("%s; asking again in %gs", exc, self._finder.http_refresh_s)
                report.source_errors.append(str(exc))
                continue
            found.extend((item, f"http:{url}") for item in urls)
        return found

    def _urls_in_records(self, records: list[Any], report: PassReport) -> Iterator[Found]:
        for record in records:
            try:
                event = self._codec.decode("Event", record.value or b"")
            except CodecError as exc:
                report.skipped[BAD_EVENT_RECORD] += 1
                log.debug("skipped an unreadable record of events: %s", exc)
                continue
            source = f"event:{event['id']}"
            for url in relay_urls_in_event(event):
                yield url, source

    async def _probe_due(self, report: PassReport) -> None:
        """Probe every due candidate, `probe_concurrency` at a time.

        Overlay relays wait, still pending, while no proxy is configured: failing them for want
        of a proxy would retire them for good.
        """
        now_ms = self._now_ms()
        reachable = self._settings.connectors.socks5_proxy is not None
        due_now = [
            candidate
            for candidate in self.pending.values()
            if candidate.due(now_ms) and (reachable or candidate.network is Network.CLEARNET)
        ]
        report.due = len(due_now)
        due = iter(due_now)

        async def worker() -> None:
            for candidate in due:
                result = await probe_relay(
                    candidate.url,
                    timeout_s=self._finder.probe_timeout_s,
                    allow=self._allow,
                    proxy=self._settings.connectors.socks5_proxy,
                )
                await self._record(candidate, result, report)

        async with asyncio.TaskGroup() as group:
            for _ in range(min(self._finder.probe_concurrency, len(due_now))):
                group.create_task(worker())

    async def _record(self, candidate: Candidate, result: ProbeResult, report: PassReport) -> None:
        """Publish the verdict, to `relays` first: a crash then never loses an accepted relay."""
        report.probed += 1
        RELAY_PROBES.labels("finder", "up" if result.speaks_nip01 else "down").inc()
        if report.probed % _PROGRESS_EVERY == 0:
            log.info(
                "probed %d of %d due candidate(s): %d accepted, %d retired so far",
                report.probed,
                report.due,
                report.accepted,
                report.retired,
            )
        now_ms = self._now_ms()
        key = candidate.url.encode()
        producer = self._running_producer()
        if result.speaks_nip01:
            updated = candidate.accepted(now_ms)
            await producer.send_and_wait(
                self._relays_topic,
                self._codec.encode("RelayDiscovered", updated.discovery_record()),
                key=key,
            )
            self.known.add(updated.url)
            report.accepted += 1
            log.info("accepted %s (%s)", updated.url, result.detail)
        else:
            updated = candidate.failed(result.detail, now_ms, self._policy)
            if updated.status is Status.RETIRED:
                self.retired.add(updated.url)
                report.retired += 1
                log.info(
                    "retired %s after %d failed probes: %s",
                    updated.url,
                    updated.attempts,
                    result.detail,
                )
        await producer.send_and_wait(
            self._candidates_topic, self._codec.encode("RelayCandidate", updated.record()), key=key
        )
        if updated.status is Status.PENDING:
            self.pending[updated.url] = updated
        else:
            self.pending.pop(updated.url, None)

    def _running_producer(self) -> Producer:
        if self._producer is None:
            raise RuntimeError(_NOT_STARTED)
        return self._producer

    def _running_http(self) -> httpx.AsyncClient:
        if self._http is None:
            raise RuntimeError(_NOT_STARTED)
        return self._http

    def _now_ms(self) -> int:
        return round(self._clock() * 1000)
