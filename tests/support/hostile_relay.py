"""A relay of our own that misbehaves on purpose, one behaviour per connection.

The behaviour is the URL path (`ws://127.0.0.1:PORT/flood`), or the instance default for `/`.
It serves events in a deliberately non-canonical JSON spelling (spaces, escaped non-ASCII, keys
out of order), so a test can check the client hands back the exact text that was sent.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Sequence
from enum import StrEnum
from types import TracebackType
from typing import Any, Self

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from bigbrotr.nostr import (
    Event,
    InvalidEvent,
    event_to_dict,
    normalize_relay_url,
    parse_event,
    verify,
)

AUTH_KIND = 22242
_AUTH_WINDOW = 600


class Behaviour(StrEnum):
    HONEST = "honest"  # the events, then EOSE
    GARBAGE = "garbage"  # GARBAGE_FRAMES first, then the events and EOSE
    GARBAGE_FLOOD = "garbage-flood"  # nothing but garbage, forever
    OVERSIZED = "oversized"  # one event bigger than `oversize_bytes`
    BAD_EVENTS = "bad-events"  # events with a wrong id or signature, then EOSE
    NO_EOSE = "no-eose"  # the events, then silence
    DISCONNECT = "disconnect"  # half the events, then the TCP connection is aborted
    SLOW_DRIP = "slow-drip"  # one event every `drip_interval` seconds, then silence
    FLOOD = "flood"  # the events over and over, as fast as possible, no EOSE
    AUTH = "auth"  # NIP-42: AUTH challenge at connect; REQ refused until authenticated
    CLOSED = "closed"  # CLOSED with `closed_reason`
    NOTICE = "notice"  # a NOTICE, then the events and EOSE
    STALL = "stall"  # accepts TCP, never answers the websocket handshake
    REDIRECT = "redirect"  # answers the handshake with an HTTP redirect to another relay
    # NIP-77 (the other behaviours ignore NEG-OPEN, as relays without NIP-77 do):
    NEG_ERR = "neg-err"  # NEG-ERR with `closed_reason` to every NEG-OPEN; REQs served honestly
    NEG_ENDLESS = "neg-endless"  # a new random fingerprint for everything, every round
    NEG_GARBAGE = "neg-garbage"  # a NEG-MSG whose message is not hex
    NEG_STALL = "neg-stall"  # answers NEG-OPEN as NEG_ENDLESS does, then never again
    NEG_NOTICE = "neg-notice"  # a NOTICE with `notice` for NEG-OPEN (a relay that does not know it)
    # Hostile input for the whole pipeline (tests/integration/test_hostile_input.py):
    FORGED = "forged"  # the `forged` texts as EVENTs, DEEP_FRAMES, then EOSE
    INVALID_UTF8 = "invalid-utf8"  # the events, then a text frame that is not UTF-8, then EOSE
    HUGE = "huge"  # `huge_count` EVENT frames of about `huge_bytes` each, then EOSE


GARBAGE_FRAMES: tuple[str | bytes, ...] = (
    "this is not json",
    '["EVENT"]',
    '["EVENT","{sub}",42]',
    '{"not":"an array"}',
    '["UNKNOWN","x"]',
    b"\x00\x01binary",
    '["EOSE"]',
    '["EVENT","{sub}",{"id":"a"}] trailing',
)


# Nested past what orjson (1024) and Python's json module (the recursion limit) read: garbage.
DEEP_FRAMES: tuple[str, ...] = (
    '["EVENT","{sub}",' + '{"a":' * 5_000 + "0" + "}" * 5_000 + "]",
    '["EVENT","{sub}",{"tags":' + "[" * 100_000 + "]" * 100_000 + "}]",
)
NOT_UTF8 = b'["EVENT","sub",{"content":"\xff\xfe"}]'


def spelled_oddly(event: Event) -> str:
    """Valid JSON for the event, but not the canonical NIP-01 spelling."""
    fields = event_to_dict(event)
    reordered = {key: fields[key] for key in reversed(list(fields))}
    return json.dumps(reordered, ensure_ascii=True, separators=(", ", " : "))


class HostileRelay:
    """`async with HostileRelay(events) as relay:` serves on `relay.url` until the block ends."""

    def __init__(
        self,
        events: Sequence[Event],
        *,
        default: Behaviour = Behaviour.HONEST,
        drip_interval: float = 1.0,
        oversize_bytes: int = 2 << 20,
        closed_reason: str = "error: shutting down for maintenance",
        notice: str = "this relay is a test",
        auth_pubkeys: frozenset[str] | None = None,
        forged: Sequence[str] = (),
        huge_bytes: int = 900 * 1024,
        huge_count: int = 50,
    ) -> None:
        self.events = list(events)
        self.default = default
        self.drip_interval = drip_interval
        self.oversize_bytes = oversize_bytes
        self.closed_reason = closed_reason
        self.notice = notice
        self.auth_pubkeys = auth_pubkeys
        self.forged = list(forged)
        self.huge_bytes = huge_bytes
        self.huge_count = huge_count
        self.received: list[Any] = []
        self.sent_events: list[str] = []
        self.connections = 0
        self._server: Server | None = None
        self._stopping = asyncio.Event()
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url_for(self, behaviour: Behaviour) -> str:
        return f"{self.url}/{behaviour}"

    async def __aenter__(self) -> Self:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            process_request=self._process_request,
            open_timeout=None,
            max_size=None,
            compression=None,
        )
        self.port = int(next(iter(self._server.sockets)).getsockname()[1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def messages(self, kind: str) -> list[list[Any]]:
        """The client messages of one type (REQ, CLOSE, AUTH) received so far."""
        return [message for message in self.received if message[0] == kind]

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        behaviour = self._behaviour(request.path)
        if behaviour is Behaviour.STALL:
            await self._stopping.wait()
            return connection.respond(503, "stalled until the relay stops")
        if behaviour is Behaviour.REDIRECT:
            response = connection.respond(301, "moved")
            response.headers["Location"] = "ws://127.0.0.1:9/"
            return response
        return None

    def _behaviour(self, path: str) -> Behaviour:
        name = path.strip("/")
        return Behaviour(name) if name else self.default

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        assert ws.request is not None
        behaviour = self._behaviour(ws.request.path)
        challenge = secrets.token_hex(16)
        authenticated = False
        try:
            if behaviour is Behaviour.AUTH:
                await ws.send(json.dumps(["AUTH", challenge]))
            async for frame in ws:
                message = json.loads(frame)
                self.received.append(message)
                if message[0] == "AUTH":
                    relay_url = normalize_relay_url(self.url + ws.request.path)
                    authenticated = await self._answer_auth(ws, message[1], challenge, relay_url)
                elif message[0] == "REQ" and behaviour is Behaviour.AUTH and not authenticated:
                    refusal = ["CLOSED", message[1], "auth-required: this relay is private"]
                    await ws.send(json.dumps(refusal))
                elif message[0] == "REQ":
                    await self._serve(ws, behaviour, message[1])
                elif message[0] in ("NEG-OPEN", "NEG-MSG"):
                    await self._reconcile(ws, behaviour, message[0], message[1])
        except ConnectionClosed:
            pass

    async def _serve(self, ws: ServerConnection, behaviour: Behaviour, sub: str) -> None:
        match behaviour:
            case Behaviour.GARBAGE:
                for frame in GARBAGE_FRAMES:
                    await ws.send(
                        frame if isinstance(frame, bytes) else frame.replace("{sub}", sub)
                    )
                await self._send_events(ws, sub, self.events)
                await ws.send(json.dumps(["EOSE", sub]))
            case Behaviour.GARBAGE_FLOOD:
                while True:
                    await ws.send("garbage")
                    await asyncio.sleep(0)
            case Behaviour.OVERSIZED:
                padding = "x" * self.oversize_bytes
                huge = f'{{"padding":"{padding}",{spelled_oddly(self.events[0])[1:]}'
                await ws.send(f'["EVENT",{json.dumps(sub)},{huge}]')
                await ws.send(json.dumps(["EOSE", sub]))
            case Behaviour.BAD_EVENTS:
                await self._send_texts(ws, sub, [_bad_id(self.events[0]), _bad_sig(self.events[1])])
                await ws.send(json.dumps(["EOSE", sub]))
            case Behaviour.NO_EOSE:
                await self._send_events(ws, sub, self.events)
                await ws.wait_closed()
            case Behaviour.DISCONNECT:
                await self._send_events(ws, sub, self.events[: len(self.events) // 2])
                ws.transport.abort()
            case Behaviour.SLOW_DRIP:
                for event in self.events:
                    await self._send_events(ws, sub, [event])
                    await asyncio.sleep(self.drip_interval)
                await ws.wait_closed()
            case Behaviour.FLOOD:
                while True:
                    await self._send_events(ws, sub, self.events)
            case Behaviour.FORGED:
                await self._send_texts(ws, sub, self.forged)
                for frame in DEEP_FRAMES:
                    await ws.send(frame.replace("{sub}", sub))
                await ws.send(json.dumps(["EOSE", sub]))
            case Behaviour.INVALID_UTF8:
                await self._send_events(ws, sub, self.events)
                await ws.send(NOT_UTF8, text=True)
                await ws.send(json.dumps(["EOSE", sub]))
            case Behaviour.HUGE:
                for index in range(self.huge_count):
                    event = self.events[index % len(self.events)]
                    padding = "x" * self.huge_bytes
                    huge = f'{{"padding":"{padding}",{spelled_oddly(event)[1:]}'
                    await ws.send(f'["EVENT",{json.dumps(sub)},{huge}]')
                await ws.send(json.dumps(["EOSE", sub]))
            case Behaviour.CLOSED:
                await ws.send(json.dumps(["CLOSED", sub, self.closed_reason]))
            case Behaviour.NOTICE:
                await ws.send(json.dumps(["NOTICE", self.notice]))
                await self._send_events(ws, sub, self.events)
                await ws.send(json.dumps(["EOSE", sub]))
            case _:
                await self._send_events(ws, sub, self.events)
                await ws.send(json.dumps(["EOSE", sub]))

    async def _reconcile(
        self, ws: ServerConnection, behaviour: Behaviour, kind: str, sub: str
    ) -> None:
        # Version 1, one range up to infinity (bound 00 00), mode fingerprint (01), 16 bytes.
        unsettled = f"61000001{secrets.token_hex(16)}"
        match behaviour:
            case Behaviour.NEG_ERR:
                await ws.send(json.dumps(["NEG-ERR", sub, self.closed_reason]))
            case Behaviour.NEG_ENDLESS:
                await ws.send(json.dumps(["NEG-MSG", sub, unsettled]))
            case Behaviour.NEG_GARBAGE:
                await ws.send(json.dumps(["NEG-MSG", sub, "this is not hex"]))
            case Behaviour.NEG_NOTICE:
                await ws.send(json.dumps(["NOTICE", self.notice]))
            case Behaviour.NEG_STALL if kind == "NEG-OPEN":
                await ws.send(json.dumps(["NEG-MSG", sub, unsettled]))

    async def _send_events(self, ws: ServerConnection, sub: str, events: Sequence[Event]) -> None:
        await self._send_texts(ws, sub, [spelled_oddly(event) for event in events])

    async def _send_texts(self, ws: ServerConnection, sub: str, texts: Sequence[str]) -> None:
        for text in texts:
            self.sent_events.append(text)
            await ws.send(f'[ "EVENT", {json.dumps(sub)}, {text} ]')
            await asyncio.sleep(0)

    async def _answer_auth(
        self, ws: ServerConnection, obj: Any, challenge: str, relay_url: str
    ) -> bool:
        event_id = obj.get("id", "") if isinstance(obj, dict) else ""
        refusal = self._auth_refusal(obj, challenge, relay_url)
        ok = ["OK", event_id, refusal is None, refusal or ""]
        await ws.send(json.dumps(ok))
        return refusal is None

    def _auth_refusal(self, obj: Any, challenge: str, relay_url: str) -> str | None:
        """Why an AUTH event is refused (NIP-42 checks), or None when it is accepted."""
        try:
            event = parse_event(json.dumps(obj))
            verify(event)
        except InvalidEvent as exc:
            return f"invalid: {exc}"
        tags = {tag[0]: tag[1] for tag in event.tags if len(tag) > 1}
        if event.kind != AUTH_KIND:
            return f"invalid: AUTH needs kind {AUTH_KIND}"
        if tags.get("challenge") != challenge:
            return "invalid: wrong challenge"
        if tags.get("relay") != relay_url:
            return f"invalid: relay tag {tags.get('relay')!r} is not {relay_url}"
        if abs(event.created_at - time.time()) > _AUTH_WINDOW:
            return "invalid: created_at is too far from now"
        if self.auth_pubkeys is not None and event.pubkey not in self.auth_pubkeys:
            return "restricted: this pubkey may not read here"
        return None


def _bad_id(event: Event) -> str:
    """The event with its content changed after signing: id and signature no longer match."""
    fields = event_to_dict(event)
    fields["content"] = fields["content"] + " (tampered)"
    return json.dumps(fields)


def _bad_sig(event: Event) -> str:
    """The event with one signature digit flipped."""
    fields = event_to_dict(event)
    sig = fields["sig"]
    fields["sig"] = ("1" if sig[0] != "1" else "2") + sig[1:]
    return json.dumps(fields)
