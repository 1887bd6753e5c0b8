"""One REQ on a relay connection, driven as an async iterator that always ends with a reason.

Every wait runs under a deadline, so a relay that stalls, drips, floods or sends garbage ends the
subscription with an `EndReason` instead of hanging it or raising. Dialling and sending run under
`asyncio.timeout_at`; receiving, once per frame, is watched by one timer instead, which re-arms
itself only when it fires and aborts the socket once the total deadline has passed or one wait
for a message has lasted `idle_timeout` (a timeout context per frame cost as much as the rest of
the client's work on a frame). Time the caller spends between two reads is not the relay's
silence. After a failure the socket is aborted; the next subscription on the client dials again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self

from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.frames import CloseCode

from bigbrotr.nostr import Filter, InvalidRelayUrl
from connectors.client.commands import close_message, req_message
from connectors.client.frames import (
    AuthFrame,
    ClosedFrame,
    EoseFrame,
    EventFrame,
    Garbage,
    NoticeFrame,
    OkFrame,
    RelayMessage,
    parse_frame,
)
from connectors.client.limits import TokenBucket
from connectors.client.outcome import EndReason, ReceivedEvent, SubscriptionResult

if TYPE_CHECKING:
    from connectors.client.connection import RelayClient

AUTH_REQUIRED_PREFIX = "auth-required:"
_KEPT_SAMPLES = 5
_KEPT_NOTICES = 20
_KEPT_CHARS = 300
# Reasons after which the connection is still in a known state and may serve the next REQ.
_REUSABLE = frozenset(
    {EndReason.EOSE, EndReason.CLOSED, EndReason.MAX_EVENTS, EndReason.AUTH_REQUIRED}
)
_NEEDS_CLOSE = frozenset({EndReason.EOSE, EndReason.MAX_EVENTS, EndReason.STOPPED})


class Subscription:
    """Created by `RelayClient.subscribe`; enter it, iterate it, then read `result`."""

    def __init__(
        self,
        client: RelayClient,
        filters: Sequence[Filter],
        *,
        live: bool,
        subscription_id: str,
    ) -> None:
        self._client = client
        self._limits = client.limits
        self._live = live
        self.subscription_id = subscription_id
        self._req = req_message(subscription_id, filters)
        self._loop = asyncio.get_running_loop()
        self._start_clock()
        self._end: tuple[EndReason, str] | None = None
        self._ended_at = self._started
        self._events = 0
        self._garbage = 0
        self._garbage_samples: list[str] = []
        self._ignored = 0
        self._notices: list[str] = []
        self._connect_ms: float | None = None
        self._first_event_ms: float | None = None
        self._eose_ms: float | None = None
        self._auth_retried = False
        self._awaiting_auth = False
        self._authenticated = False
        self._watchdog: asyncio.TimerHandle | None = None
        self._expired: tuple[EndReason, str] | None = None

    @property
    def result(self) -> SubscriptionResult:
        """How the subscription went; while it still runs, `end_reason` is STOPPED."""
        reason, detail = self._end or (EndReason.STOPPED, "still running")
        ended = self._ended_at if self._end else self._loop.time()
        return SubscriptionResult(
            relay_url=self._client.url,
            subscription_id=self.subscription_id,
            end_reason=reason,
            detail=detail,
            events=self._events,
            garbage_frames=self._garbage,
            garbage_samples=tuple(self._garbage_samples),
            ignored_frames=self._ignored,
            notices=tuple(self._notices),
            authenticated=self._authenticated if self._end else self._client.auth.authenticated,
            connect_ms=self._connect_ms,
            first_event_ms=self._first_event_ms,
            eose_ms=self._eose_ms,
            duration_ms=_ms(ended - self._started),
        )

    def _start_clock(self) -> None:
        self._started = self._loop.time()
        self._deadline = self._started + self._limits.total_timeout
        self._waiting_since: float | None = None
        self._req_sent = self._started
        self._bucket = TokenBucket(
            self._limits.max_messages_per_second, self._limits.message_burst, self._started
        )

    async def __aenter__(self) -> Self:
        self._client._claim()
        self._start_clock()
        try:
            if await self._open():
                self._req_sent = self._loop.time()
                await self._send(self._req)
                if self._end is None:
                    self._watch()
        except BaseException:
            self._client.drop()
            self._client._release()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if self._end is None:
                if exc_type is None:
                    await self._finish(EndReason.STOPPED, "the caller stopped reading")
                else:
                    self._record_end(EndReason.STOPPED, f"the caller raised {exc_type.__name__}")
                    self._client.drop()
        finally:
            self._client._release()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ReceivedEvent:
        while self._end is None:
            frame = await self._receive()
            if frame is None:
                break
            event = await self._handle(parse_frame(frame))
            if event is not None:
                return event
        raise StopAsyncIteration

    async def _open(self) -> bool:
        """Dial when the client has no socket; False (with the end recorded) when that fails."""
        started = self._loop.time()
        timeout_at = min(self._deadline, started + self._limits.connect_timeout)
        try:
            async with asyncio.timeout_at(timeout_at):
                opened = await self._client._connection()
        except InvalidRelayUrl as exc:
            self._record_end(EndReason.URL_REFUSED, str(exc))
            return False
        except TimeoutError:
            waited = self._loop.time() - started
            self._record_end(EndReason.CONNECT_FAILED, f"no connection after {waited:.1f}s")
            return False
        except (OSError, WebSocketException) as exc:
            self._record_end(EndReason.CONNECT_FAILED, _describe(exc))
            return False
        if opened is not None:
            self._connect_ms = _ms(self._loop.time() - started)
        return True

    async def _receive(self) -> str | bytes | None:
        """The next frame, or None once a deadline, the socket or the rate limit ended us."""
        if self._expired is None:
            self._waiting_since = self._loop.time()
            try:
                frame = await self._client._socket.recv()
            except ConnectionClosed as exc:
                await self._closed_socket(exc)
                return None
            finally:
                self._waiting_since = None
        if self._expired is not None:
            await self._finish(*self._expired)
            return None
        if not self._bucket.take(self._loop.time()):
            rate = self._limits.max_messages_per_second
            await self._finish(EndReason.RATE_LIMITED, f"more than {rate:g} messages per second")
            return None
        return frame

    def _watch(self) -> None:
        """Timer callback: re-arm for the next moment a deadline could pass; once one has, abort
        the socket so that the pending receive ends and `_receive` records which one.

        Until EOSE (for ever in history mode) one wait for a message may last `idle_timeout`;
        while the caller is not waiting, the timer looks again `idle_timeout` later, so it never
        fires after a wait's end is due.
        """
        now = self._loop.time()
        check_at = self._deadline
        if now >= self._deadline:
            total = self._limits.total_timeout
            self._expired = (EndReason.TOTAL_TIMEOUT, f"still running after {total}s")
        elif not self._live or self._eose_ms is None:
            idle = self._limits.idle_timeout
            waiting = self._waiting_since
            if waiting is not None and now - waiting >= idle:
                self._expired = (EndReason.IDLE_TIMEOUT, f"no message for {idle}s")
            else:
                check_at = min(check_at, (now if waiting is None else waiting) + idle)
        if self._expired is None:
            self._watchdog = self._loop.call_at(check_at, self._watch)
            return
        self._watchdog = None
        if self._client.connected:
            self._client._socket.transport.abort()

    async def _handle(self, message: RelayMessage) -> ReceivedEvent | None:
        match message:
            case EventFrame() if message.subscription_id == self.subscription_id:
                return await self._event(message)
            case EoseFrame() if message.subscription_id == self.subscription_id:
                self._eose_ms = self._since_req()
                if not self._live:
                    await self._finish(EndReason.EOSE, "end of stored events")
            case ClosedFrame() if message.subscription_id == self.subscription_id:
                await self._relay_closed(message.message)
            case NoticeFrame():
                if len(self._notices) < _KEPT_NOTICES:
                    self._notices.append(message.message[:_KEPT_CHARS])
            case AuthFrame():
                self._client.auth.challenge = message.challenge
                await self._send_auth()
            case OkFrame():
                await self._ok(message)
            case Garbage():
                await self._garbage_frame(message.detail)
            case _:
                self._ignored += 1
        return None

    async def _event(self, frame: EventFrame) -> ReceivedEvent | None:
        if self._events >= self._limits.max_events:
            limit = self._limits.max_events
            await self._finish(EndReason.MAX_EVENTS, f"the relay sent more than {limit} events")
            return None
        self._events += 1
        if self._first_event_ms is None:
            self._first_event_ms = self._since_req()
        return ReceivedEvent(
            frame.text, frame.event_id, frame.created_at, time.time(), frame.fields
        )

    async def _relay_closed(self, reason: str) -> None:
        if not reason.startswith(AUTH_REQUIRED_PREFIX):
            await self._finish(EndReason.CLOSED, reason)
        elif not self._client.auth.has_key:
            await self._finish(EndReason.AUTH_REQUIRED, reason)
        elif self._auth_retried:
            await self._finish(EndReason.AUTH_FAILED, f"still refused after AUTH: {reason}")
        elif self._client.auth.refusal is not None:
            await self._finish(EndReason.AUTH_FAILED, self._client.auth.refusal)
        else:
            self._auth_retried = True
            if self._client.auth.authenticated:
                await self._send(self._req)
            else:
                self._awaiting_auth = True
                if self._client.auth.pending is None:
                    await self._send_auth()

    async def _ok(self, frame: OkFrame) -> None:
        accepted = self._client.auth.verdict(frame)
        if accepted is None:
            self._ignored += 1
        elif self._awaiting_auth:
            self._awaiting_auth = False
            if accepted:
                await self._send(self._req)
            else:
                await self._finish(EndReason.AUTH_FAILED, self._client.auth.refusal or "")

    async def _garbage_frame(self, detail: str) -> None:
        self._garbage += 1
        if len(self._garbage_samples) < _KEPT_SAMPLES:
            self._garbage_samples.append(detail[:_KEPT_CHARS])
        if self._garbage > self._limits.max_garbage_frames:
            limit = self._limits.max_garbage_frames
            await self._finish(EndReason.PROTOCOL_ERROR, f"more than {limit} bad frames: {detail}")

    async def _closed_socket(self, exc: ConnectionClosed) -> None:
        if self._expired is not None:
            await self._finish(*self._expired)
        elif exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
            limit = self._limits.max_frame_bytes
            await self._finish(EndReason.TOO_LARGE, f"a message exceeded {limit} bytes")
        else:
            await self._finish(EndReason.DISCONNECTED, _describe(exc))

    async def _send_auth(self) -> None:
        """Answer the relay's latest challenge, when we hold a key and it has sent one."""
        message = self._client.auth.answer(self._client.url, int(time.time()))
        if message is not None:
            await self._send(message)

    async def _send(self, text: str) -> None:
        """Send within the total deadline: a relay that stops reading cannot block us."""
        try:
            async with asyncio.timeout_at(self._deadline):
                await self._client._socket.send(text)
        except TimeoutError:
            total = self._limits.total_timeout
            await self._finish(EndReason.TOTAL_TIMEOUT, f"still sending after {total}s")
        except ConnectionClosed as exc:
            await self._closed_socket(exc)

    async def _finish(self, reason: EndReason, detail: str) -> None:
        """Record the end, then leave the socket ready for the next REQ or abort it."""
        self._record_end(reason, detail)
        if reason in _NEEDS_CLOSE and self._client.connected:
            try:
                async with asyncio.timeout(self._limits.close_timeout):
                    await self._client._socket.send(close_message(self.subscription_id))
            except (TimeoutError, ConnectionClosed):
                self._client.drop()
        elif reason not in _REUSABLE:
            self._client.drop()

    def _record_end(self, reason: EndReason, detail: str) -> None:
        if self._end is None:
            self._end = (reason, detail)
            self._ended_at = self._loop.time()
            self._authenticated = self._client.auth.authenticated
            if self._watchdog is not None:
                self._watchdog.cancel()
                self._watchdog = None

    def _since_req(self) -> float:
        return _ms(self._loop.time() - self._req_sent)


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
