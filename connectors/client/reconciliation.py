"""One NIP-77 reconciliation on a relay's connection: NEG-OPEN, NEG-MSG rounds, NEG-CLOSE.

It always ends with a `NegEnd` and a detail, whatever the relay does: every wait runs under a
deadline, rounds and ids are counted against `NegentropyLimits`, and the relay's messages go
through the strict protocol code, where anything malformed is a protocol error. A relay that
never answers NEG-OPEN in time, or answers it with a NOTICE or CLOSED, does not speak NIP-77.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.frames import CloseCode

from bigbrotr.nostr import Filter, InvalidRelayUrl
from connectors.client.commands import neg_close_message, neg_msg_message, neg_open_message
from connectors.client.frames import (
    ClosedFrame,
    Garbage,
    NegErrFrame,
    NegMsgFrame,
    NoticeFrame,
    parse_frame,
)
from connectors.client.limits import TokenBucket
from connectors.negentropy import ItemSet, Negentropy, ProtocolError

if TYPE_CHECKING:
    from connectors.client.connection import RelayClient


class NegEnd(StrEnum):
    """Why a reconciliation ended; stable values (reports and gap reasons quote them)."""

    DONE = "done"
    UNSUPPORTED = "unsupported"
    REFUSED = "refused"
    MAX_ROUNDS = "max_rounds"
    MAX_IDS = "max_ids"
    PROTOCOL_ERROR = "protocol_error"
    TIMEOUT = "timeout"
    TOO_LARGE = "too_large"
    RATE_LIMITED = "rate_limited"
    DISCONNECTED = "disconnected"
    CONNECT_FAILED = "connect_failed"
    URL_REFUSED = "url_refused"


@dataclass(frozen=True, slots=True)
class NegentropyLimits:
    """Bounds on one reconciliation (bytes, counts, seconds).

    `frame_size_limit` bounds each message we send (the relay sizes its own; the websocket's
    `max_frame_bytes` bounds those). `answer_timeout` is how long a first answer may take before
    the relay is taken not to speak NIP-77; `round_timeout` bounds each later answer.
    `max_ids` bounds the ids either side lacks, so memory stays bounded.
    """

    frame_size_limit: int = 60_000
    max_rounds: int = 64
    max_ids: int = 100_000
    answer_timeout: float = 10.0
    round_timeout: float = 30.0
    total_timeout: float = 120.0


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """How one reconciliation went. `need` holds the hex ids only the relay has; `have` counts
    the ids only we have. Bytes count the websocket text both ways.
    """

    end: NegEnd
    detail: str
    need: list[str]
    have: int
    rounds: int
    answered: bool
    bytes_sent: int
    bytes_received: int

    @property
    def supported(self) -> bool | None:
        """Whether the relay speaks NIP-77; None when this attempt could not tell."""
        if self.end is NegEnd.UNSUPPORTED:
            return False
        return True if self.answered else None


class _End(Exception):  # noqa: N818  (control flow: carries the end, not an error to report)
    def __init__(self, end: NegEnd, detail: str) -> None:
        super().__init__(detail)
        self.end = end
        self.detail = detail


class _Run:
    def __init__(
        self, client: RelayClient, flt: Filter, items: ItemSet, limits: NegentropyLimits
    ) -> None:
        self.client = client
        self.flt = flt
        self.limits = limits
        self.session = Negentropy(items, frame_size_limit=limits.frame_size_limit)
        self.subscription_id = secrets.token_hex(8)
        self.loop = asyncio.get_running_loop()
        self.deadline = self.loop.time() + limits.total_timeout
        self.need: list[str] = []
        self.have = 0
        self.rounds = 0
        self.answered = False
        self.garbage = 0
        self.sent = 0
        self.received = 0
        bounds = client.limits
        self.bucket = TokenBucket(
            bounds.max_messages_per_second, bounds.message_burst, self.loop.time()
        )

    async def run(self) -> Reconciliation:
        try:
            await self._open()
            opening = self.session.initiate()
            await self._send(neg_open_message(self.subscription_id, self.flt, opening))
            while True:
                await self._handle(await self._receive())
        except _End as end:
            await self._finish(end.end)
            return Reconciliation(
                end.end,
                end.detail,
                self.need,
                self.have,
                self.rounds,
                self.answered,
                self.sent,
                self.received,
            )

    async def _open(self) -> None:
        started = self.loop.time()
        timeout_at = min(self.deadline, started + self.client.limits.connect_timeout)
        try:
            async with asyncio.timeout_at(timeout_at):
                await self.client._connection()
        except InvalidRelayUrl as exc:
            raise _End(NegEnd.URL_REFUSED, str(exc)) from exc
        except TimeoutError as exc:
            waited = self.loop.time() - started
            raise _End(NegEnd.CONNECT_FAILED, f"no connection after {waited:.1f}s") from exc
        except (OSError, WebSocketException) as exc:
            raise _End(NegEnd.CONNECT_FAILED, f"{type(exc).__name__}: {exc}") from exc

    async def _receive(self) -> str | bytes:
        wait = self.limits.round_timeout if self.answered else self.limits.answer_timeout
        timeout_at = min(self.deadline, self.loop.time() + wait)
        try:
            async with asyncio.timeout_at(timeout_at):
                frame = await self.client._socket.recv()
        except TimeoutError as exc:
            if timeout_at >= self.deadline:
                total = self.limits.total_timeout
                raise _End(NegEnd.TIMEOUT, f"still reconciling after {total:g}s") from exc
            if not self.answered:
                raise _End(NegEnd.UNSUPPORTED, f"no answer to NEG-OPEN in {wait:g}s") from exc
            raise _End(NegEnd.TIMEOUT, f"no answer for {wait:g}s") from exc
        except ConnectionClosed as exc:
            raise self._closed(exc) from exc
        self.received += len(frame)
        if not self.bucket.take(self.loop.time()):
            rate = self.client.limits.max_messages_per_second
            raise _End(NegEnd.RATE_LIMITED, f"more than {rate:g} messages per second")
        return frame

    async def _handle(self, frame: str | bytes) -> None:
        ours = self.subscription_id
        match parse_frame(frame):
            case NegMsgFrame(subscription_id=sub, message=hex_message) if sub == ours:
                self.answered = True
                await self._round(hex_message)
            case NegErrFrame(subscription_id=sub, reason=reason) if sub == ours:
                self.answered = True
                raise _End(NegEnd.REFUSED, f"NEG-ERR: {reason}")
            case NoticeFrame(message=message) if not self.answered:
                raise _End(NegEnd.UNSUPPORTED, f"NOTICE: {message[:300]}")
            case ClosedFrame(subscription_id=sub, message=message) if sub == ours:
                end = NegEnd.REFUSED if self.answered else NegEnd.UNSUPPORTED
                raise _End(end, f"CLOSED: {message[:300]}")
            case Garbage(detail=detail):
                self.garbage += 1
                if self.garbage > self.client.limits.max_garbage_frames:
                    raise _End(NegEnd.PROTOCOL_ERROR, f"too many bad frames: {detail}")
            case _:
                pass

    async def _round(self, hex_message: str) -> None:
        self.rounds += 1
        try:
            step = self.session.reconcile(bytes.fromhex(hex_message))
        except ValueError as exc:  # ProtocolError, or text that is not hex
            kind = "" if isinstance(exc, ProtocolError) else "not hex: "
            raise _End(NegEnd.PROTOCOL_ERROR, f"{kind}{exc}") from exc
        self.need.extend(item_id.hex() for item_id in step.need)
        self.have += len(step.have)
        if len(self.need) + self.have > self.limits.max_ids:
            raise _End(
                NegEnd.MAX_IDS, f"more than {self.limits.max_ids} ids differ after {self.rounds}"
            )
        if step.message is None:
            raise _End(NegEnd.DONE, f"reconciled in {self.rounds} round(s)")
        if self.rounds >= self.limits.max_rounds:
            raise _End(NegEnd.MAX_ROUNDS, f"not reconciled after {self.rounds} rounds")
        await self._send(neg_msg_message(self.subscription_id, step.message))

    async def _send(self, text: str) -> None:
        try:
            async with asyncio.timeout_at(self.deadline):
                await self.client._socket.send(text)
        except TimeoutError as exc:
            raise _End(NegEnd.TIMEOUT, "the relay stopped reading") from exc
        except ConnectionClosed as exc:
            raise self._closed(exc) from exc
        self.sent += len(text)

    def _closed(self, exc: ConnectionClosed) -> _End:
        if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
            limit = self.client.limits.max_frame_bytes
            return _End(NegEnd.TOO_LARGE, f"a message exceeded {limit} bytes")
        return _End(NegEnd.DISCONNECTED, f"{type(exc).__name__}: {exc}")

    async def _finish(self, end: NegEnd) -> None:
        """Leave the socket ready for the REQs that follow; abort it when its state is unknown."""
        if end is NegEnd.REFUSED and self.client.connected:
            return
        if end is NegEnd.DONE and self.client.connected:
            try:
                async with asyncio.timeout(self.client.limits.close_timeout):
                    await self.client._socket.send(neg_close_message(self.subscription_id))
                return
            except (TimeoutError, ConnectionClosed):
                pass
        self.client.drop()


async def run_reconciliation(
    client: RelayClient, flt: Filter, items: ItemSet, limits: NegentropyLimits
) -> Reconciliation:
    """Reconcile `items` with the relay's events matching `flt` (NIP-77), on `client`'s socket."""
    client._claim()
    try:
        return await _Run(client, flt, items, limits).run()
    except BaseException:
        client.drop()
        raise
    finally:
        client._release()
