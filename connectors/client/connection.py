"""`RelayClient`: one relay's websocket, opened on first use, reopened after a failure.

Subscriptions run one at a time: the synchronizer walks a relay's history window by window, and
parallelism comes from many relays, not from many REQs on one socket. The client also answers
NIP-42 challenges when it holds a key, whichever subscription happens to read them.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from types import TracebackType
from typing import Self

from websockets.asyncio.client import ClientConnection
from websockets.protocol import State

from bigbrotr.nostr import Filter, InvalidRelayUrl, normalize_relay_url
from connectors.client.auth import AuthState
from connectors.client.dial import dial
from connectors.client.limits import ClientLimits
from connectors.client.outcome import Fetched
from connectors.client.reconciliation import NegentropyLimits, Reconciliation, run_reconciliation
from connectors.client.subscription import Subscription
from connectors.negentropy import ItemSet


class RelayClient:
    """A client for one relay URL. Use as `async with RelayClient(url) as client:`.

    `allow` lists loopback or private relays the SSRF guard may let through (tests, dev stacks);
    `proxy` is a `socks5://host:port` URL for .onion, .i2p and .loki relays; `secret_key` (hex)
    lets the client authenticate (NIP-42) when a relay asks.
    """

    def __init__(
        self,
        url: str,
        *,
        limits: ClientLimits | None = None,
        allow: Collection[str] = (),
        proxy: str | None = None,
        secret_key: str | None = None,
    ) -> None:
        try:
            self.url = normalize_relay_url(url)
        except InvalidRelayUrl:
            self.url = url
        self.limits = limits or ClientLimits()
        self._allow = tuple(allow)
        self._proxy = proxy
        self.auth = AuthState(secret_key)
        self._ws: ClientConnection | None = None
        self._busy = False

    @property
    def connected(self) -> bool:
        return self._ws is not None and self._ws.state is State.OPEN

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.aclose()
        else:
            self.drop()

    async def aclose(self) -> None:
        """Close the websocket politely (bounded by `close_timeout`)."""
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    def drop(self) -> None:
        """Abort the connection at once: used when the relay or our caller can't be trusted."""
        ws, self._ws = self._ws, None
        if ws is not None:
            ws.transport.abort()

    def subscribe(
        self,
        filters: Sequence[Filter],
        *,
        live: bool = False,
        subscription_id: str | None = None,
    ) -> Subscription:
        """A REQ to run as `async with client.subscribe(...) as sub: async for event in sub:`.

        History mode ends at EOSE; live mode keeps streaming until the caller leaves the block or
        a limit ends it. `sub.result` says how it ended.
        """
        if not filters:
            raise ValueError("a REQ needs at least one filter")
        return Subscription(
            self, filters, live=live, subscription_id=subscription_id or secrets.token_hex(8)
        )

    async def fetch(
        self, filters: Sequence[Filter], *, subscription_id: str | None = None
    ) -> Fetched:
        """Run a history subscription to its end and collect the events."""
        async with self.subscribe(filters, subscription_id=subscription_id) as subscription:
            events = [event async for event in subscription]
        return Fetched(events, subscription.result)

    async def reconcile(
        self, flt: Filter, items: ItemSet, limits: NegentropyLimits | None = None
    ) -> Reconciliation:
        """Reconcile `items` with the relay's events matching `flt` (NIP-77, negentropy)."""
        return await run_reconciliation(self, flt, items, limits or NegentropyLimits())

    def _claim(self) -> None:
        if self._busy:
            raise RuntimeError(f"a subscription to {self.url} is already running on this client")
        self._busy = True

    def _release(self) -> None:
        self._busy = False

    async def _connection(self) -> ClientConnection | None:
        """The open websocket, dialling if needed (also when the relay closed the old one);
        None when it was already open.
        """
        if self.connected:
            return None
        self.drop()
        self._ws = await dial(
            normalize_relay_url(self.url), allow=self._allow, proxy=self._proxy, limits=self.limits
        )
        self.auth.reset()
        return self._ws

    @property
    def _socket(self) -> ClientConnection:
        if self._ws is None:
            raise RuntimeError(f"no open connection to {self.url}")
        return self._ws
