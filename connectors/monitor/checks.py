"""The NIP-66 websocket checks: open, read and write, timed on one connection.

`open` is the websocket handshake (DNS, TCP, proxy, TLS included), `read` a REQ answered by an
EVENT or EOSE, `write` a signed EVENT answered by an OK. Each step has its own deadline and every
failure becomes a `CheckResult` with the reason: a relay that refuses, stalls or sends garbage is a
fact to record, not an exception.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, WebSocketException

from bigbrotr.nostr import Event, Filter, InvalidRelayUrl, event_to_json
from connectors.client import (
    ClientLimits,
    ClosedFrame,
    EoseFrame,
    EventFrame,
    OkFrame,
    RelayMessage,
    parse_frame,
)
from connectors.client.commands import close_message, req_message
from connectors.client.dial import dial

_CLOSE_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's outcome: `rtt_ms` when the relay answered, `error` when it did not pass."""

    ok: bool
    rtt_ms: int | None = None
    error: str | None = None

    def to_record(self) -> dict[str, Any]:
        """The `NipCheck` record of the RelayProbe schema."""
        return {"ok": self.ok, "rtt_ms": self.rtt_ms, "error": self.error}


@dataclass(frozen=True, slots=True)
class CheckTimeouts:
    """Seconds each check may take."""

    open: float = 10.0
    read: float = 10.0
    write: float = 10.0


@dataclass(frozen=True, slots=True)
class SocketChecks:
    """The three checks of one relay; `read` and `write` are None when not attempted."""

    open: CheckResult
    read: CheckResult | None
    write: CheckResult | None


class RelayRefusalError(Exception):
    """The relay answered, but not with what the check waits for; the message says what."""


async def open_socket(
    url: str, *, allow: Collection[str], proxy: str | None, time_limit: float
) -> ClientConnection:
    """A websocket to a normalised relay URL through the client's SSRF guard and proxy rules.

    Raises `InvalidRelayUrl`, `OSError`, `TimeoutError` or a websockets error.
    """
    limits = ClientLimits(connect_timeout=time_limit, close_timeout=_CLOSE_TIMEOUT)
    async with asyncio.timeout(time_limit):
        return await dial(url, allow=allow, proxy=proxy, limits=limits)


async def run_socket_checks(
    url: str,
    *,
    allow: Collection[str] = (),
    proxy: str | None = None,
    timeouts: CheckTimeouts | None = None,
    write_event: Event | None = None,
) -> SocketChecks:
    """Open, read, and (with `write_event`) write on one connection to a normalised relay URL."""
    limits = timeouts or CheckTimeouts()
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        ws = await open_socket(url, allow=allow, proxy=proxy, time_limit=limits.open)
    except TimeoutError:
        failed = CheckResult(False, error=f"no connection in {limits.open:g}s")
        return SocketChecks(failed, None, None)
    except (InvalidRelayUrl, OSError, WebSocketException) as exc:
        return SocketChecks(CheckResult(False, error=describe(exc)), None, None)
    opened = CheckResult(True, rtt_ms=_ms_since(loop, started))
    try:
        read = await _timed(lambda: _read(ws), limits.read, "REQ")
        write = None
        if write_event is not None:
            write = await _timed(lambda: send_event(ws, write_event), limits.write, "EVENT")
    finally:
        await close_socket(ws)
    return SocketChecks(opened, read, write)


async def send_event(ws: ClientConnection, event: Event) -> None:
    """Publish `event` and wait for its OK; raise `RelayRefusalError` when the relay refuses it."""
    await ws.send(f'["EVENT",{event_to_json(event)}]')
    while True:
        message = await _next(ws)
        if isinstance(message, OkFrame) and message.event_id == event.id:
            if not message.accepted:
                raise RelayRefusalError(f"OK false: {message.message or 'no reason given'}")
            return


async def close_socket(ws: ClientConnection) -> None:
    """Close politely, but never wait longer than `_CLOSE_TIMEOUT` for a relay that won't."""
    try:
        async with asyncio.timeout(_CLOSE_TIMEOUT):
            await ws.close()
    except TimeoutError:
        ws.transport.abort()


async def _read(ws: ClientConnection) -> None:
    """A REQ for one event, answered by that event or by EOSE."""
    subscription = f"bigbrotr-{secrets.token_hex(6)}"
    await ws.send(req_message(subscription, [Filter(limit=1)]))
    while True:
        message = await _next(ws)
        if isinstance(message, EventFrame | EoseFrame) and message.subscription_id == subscription:
            await ws.send(close_message(subscription))
            return
        if isinstance(message, ClosedFrame) and message.subscription_id == subscription:
            raise RelayRefusalError(f"CLOSED: {message.message or 'no reason given'}")


async def _next(ws: ClientConnection) -> RelayMessage:
    return parse_frame(await ws.recv())


async def _timed(step: Callable[[], Awaitable[None]], time_limit: float, what: str) -> CheckResult:
    """Run `step()` under its deadline and turn how it ended into a `CheckResult`."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        async with asyncio.timeout(time_limit):
            await step()
    except TimeoutError:
        return CheckResult(False, error=f"no answer to {what} in {time_limit:g}s")
    except RelayRefusalError as exc:
        return CheckResult(False, rtt_ms=_ms_since(loop, started), error=str(exc))
    except ConnectionClosed as exc:
        return CheckResult(False, error=f"connection closed: {describe(exc)}")
    return CheckResult(True, rtt_ms=_ms_since(loop, started))


def _ms_since(loop: asyncio.AbstractEventLoop, started: float) -> int:
    return max(0, round((loop.time() - started) * 1000))


def describe(exc: BaseException) -> str:
    """An exception as one line for a record: its type, and its message when it has one."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
