"""Sends the monitor's signed NIP-66 events to the configured relays and waits for each OK.

One connection per target relay is kept open across probes (a monitor publishes one event per
probed relay) and dialled again after any failure. A target that refuses or fails is logged and
counted, never fatal: the probe itself is already safe in Kafka.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import WebSocketException

from bigbrotr.nostr import Event, InvalidRelayUrl
from connectors.monitor.checks import (
    RelayRefusalError,
    close_socket,
    describe,
    open_socket,
    send_event,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one target relay said to one event: accepted, or why not."""

    relay_url: str
    accepted: bool
    error: str | None = None


class EventPublisher:
    """`async with EventPublisher(targets) as publisher: await publisher.publish(event)`."""

    def __init__(
        self,
        targets: Sequence[str],
        *,
        allow: Collection[str] = (),
        proxy: str | None = None,
        time_limit: float = 10.0,
    ) -> None:
        self.targets = tuple(targets)
        self._allow = tuple(allow)
        self._proxy = proxy
        self._time_limit = time_limit
        self._sockets: dict[str, ClientConnection] = {}
        self._locks = {target: asyncio.Lock() for target in self.targets}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        sockets, self._sockets = self._sockets, {}
        await asyncio.gather(*(close_socket(ws) for ws in sockets.values()))

    async def publish(self, event: Event) -> list[Delivery]:
        """Send `event` to every target at once; one `Delivery` per target."""
        return list(await asyncio.gather(*(self._deliver(t, event) for t in self.targets)))

    async def _deliver(self, target: str, event: Event) -> Delivery:
        async with self._locks[target]:
            try:
                async with asyncio.timeout(self._time_limit):
                    ws = self._sockets.get(target)
                    if ws is None:
                        ws = await open_socket(
                            target,
                            allow=self._allow,
                            proxy=self._proxy,
                            time_limit=self._time_limit,
                        )
                        self._sockets[target] = ws
                    await send_event(ws, event)
            except RelayRefusalError as exc:
                delivery = Delivery(target, False, str(exc))
            except TimeoutError:
                self._drop(target)
                delivery = Delivery(target, False, f"no OK in {self._time_limit:g}s")
            except (InvalidRelayUrl, OSError, WebSocketException) as exc:
                self._drop(target)
                delivery = Delivery(target, False, describe(exc))
            else:
                return Delivery(target, True)
        log.warning("kind %d event not stored by %s: %s", event.kind, target, delivery.error)
        return delivery

    def _drop(self, target: str) -> None:
        """Forget a connection in an unknown state; the next event dials again."""
        ws = self._sockets.pop(target, None)
        if ws is not None:
            ws.transport.abort()
