"""A history subscription fed a script of frames, and what it must make of them.

Shared by the property tests and the fuzzer: `read_script` runs the real `Subscription` over a
`ScriptedSocket` (a pure fake of the websocket: frames in order, then the peer closes), and
`expected_end` says, message by message, how a subscription without a key must end.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import ConnectionClosedError
from websockets.protocol import State

from bigbrotr.nostr import Filter
from connectors.client import (
    ClientLimits,
    ClosedFrame,
    EndReason,
    EoseFrame,
    EventFrame,
    Garbage,
    RelayClient,
    parse_frame,
)

SUB = "s"
_REQ = json.dumps(["REQ", SUB, {"limit": 10}], separators=(",", ":"))


class ScriptedSocket:
    """Delivers `frames`, then is closed by the peer; records what the client sent."""

    def __init__(self, frames: Sequence[str | bytes]) -> None:
        self.frames = deque(frames)
        self.sent: list[str] = []
        self.state = State.OPEN
        self.transport = self

    async def recv(self) -> str | bytes:
        if self.frames and self.state is State.OPEN:
            return self.frames.popleft()
        self.state = State.CLOSED
        raise ConnectionClosedError(None, None)

    async def send(self, text: str) -> None:
        self.sent.append(text)

    def abort(self) -> None:
        self.state = State.CLOSED


@dataclass(frozen=True)
class Outcome:
    reason: EndReason
    texts: tuple[str, ...]


def expected_end(frames: Sequence[str | bytes], limits: ClientLimits) -> Outcome:
    """How a history subscription `SUB` without a key ends on `frames`, and the events it yields."""
    texts: list[str] = []
    garbage = 0
    for frame in frames:
        message = parse_frame(frame)
        mine = getattr(message, "subscription_id", None) == SUB
        if isinstance(message, EventFrame) and mine:
            if len(texts) >= limits.max_events:
                return Outcome(EndReason.MAX_EVENTS, tuple(texts))
            texts.append(message.text)
        elif isinstance(message, EoseFrame) and mine:
            return Outcome(EndReason.EOSE, tuple(texts))
        elif isinstance(message, ClosedFrame) and mine:
            auth = message.message.startswith("auth-required:")
            return Outcome(EndReason.AUTH_REQUIRED if auth else EndReason.CLOSED, tuple(texts))
        elif isinstance(message, Garbage):
            garbage += 1
            if garbage > limits.max_garbage_frames:
                return Outcome(EndReason.PROTOCOL_ERROR, tuple(texts))
    return Outcome(EndReason.DISCONNECTED, tuple(texts))


async def read_script(frames: Sequence[str | bytes], limits: ClientLimits) -> Outcome:
    """Run a real history subscription `SUB` over `frames`; how it ended and what it yielded."""
    client = RelayClient("ws://127.0.0.1:1", limits=limits)
    socket: Any = ScriptedSocket(frames)
    client._ws = socket
    async with client.subscribe([Filter(limit=10)], subscription_id=SUB) as subscription:
        texts = tuple([received.text async for received in subscription])
    if socket.sent[0] != _REQ:
        raise AssertionError(f"the subscription sent {socket.sent[0]!r} first, not its REQ")
    return Outcome(subscription.result.end_reason, texts)
