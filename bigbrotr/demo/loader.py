"""Publish events to a relay over a plain websocket, independently of BigBrotr's relay client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import websockets

from bigbrotr.errors import RelayLoadError
from bigbrotr.nostr import Event, event_to_json

_WINDOW = 200
_TIMEOUT = 120.0


async def load_events(url: str, events: Sequence[Event]) -> set[str]:
    """Send every event, wait for each `OK true`, and return the ids the relay accepted.

    At most `_WINDOW` events are in flight, so a relay's write queue never overflows; the whole
    load is bounded by `_TIMEOUT` seconds.
    """
    accepted: set[str] = set()
    pending: set[str] = set()
    async with asyncio.timeout(_TIMEOUT), websockets.connect(url, max_size=None) as ws:
        for event in events:
            while len(pending) >= _WINDOW:
                await _read_ok(ws, pending, accepted)
            pending.add(event.id)
            await ws.send(f'["EVENT",{event_to_json(event)}]')
        while pending:
            await _read_ok(ws, pending, accepted)
    return accepted


async def _read_ok(ws: websockets.ClientConnection, pending: set[str], accepted: set[str]) -> None:
    message = json.loads(await ws.recv())
    if message[0] != "OK" or message[1] not in pending:
        return
    pending.discard(message[1])
    if message[2] is not True and not str(message[3]).startswith("duplicate:"):
        raise RelayLoadError(f"relay refused event {message[1]}: {message[3]}")
    accepted.add(message[1])
