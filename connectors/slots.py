"""How many relays are pulled at once: a global bound, a bound per network, priority relays first.

Overlay networks are slower and shared (a Tor circuit is expensive), so each network has its own
bound under the global one. Waiters are served priority first, then in arrival order; a waiter
whose network is full does not hold up waiters of other networks.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from bigbrotr.nostr import Network


@dataclass(order=True, slots=True)
class _Waiter:
    rank: int
    seq: int
    network: Network = field(compare=False)
    granted: asyncio.Future[None] = field(compare=False)


class PullSlots:
    """`async with slots.hold(network, priority=...)` waits for a free slot and holds it."""

    def __init__(self, total: int, per_network: Mapping[Network, int]) -> None:
        self._busy: Counter[Network] = Counter()
        self._waiters: list[_Waiter] = []
        self._order = itertools.count()
        self.resize(total, per_network)

    def resize(self, total: int, per_network: Mapping[Network, int]) -> None:
        """New bounds (SIGHUP): wider ones grant waiters at once; narrower ones take effect as
        held slots are released."""
        if total < 1 or any(bound < 1 for bound in per_network.values()):
            raise ValueError("every concurrency bound must be at least 1")
        self.total = total
        self.per_network = dict(per_network)
        self._grant()

    @property
    def busy(self) -> Mapping[Network, int]:
        """Slots held now, per network."""
        return {network: count for network, count in self._busy.items() if count}

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @asynccontextmanager
    async def hold(self, network: Network, *, priority: bool = False) -> AsyncIterator[None]:
        await self._acquire(network, priority)
        try:
            yield
        finally:
            self._busy[network] -= 1
            self._grant()

    async def _acquire(self, network: Network, priority: bool) -> None:
        loop = asyncio.get_running_loop()
        waiter = _Waiter(0 if priority else 1, next(self._order), network, loop.create_future())
        heapq.heappush(self._waiters, waiter)
        self._grant()
        try:
            await waiter.granted
        except asyncio.CancelledError:
            if waiter.granted.done() and not waiter.granted.cancelled():
                self._busy[network] -= 1
            else:
                self._waiters.remove(waiter)
                heapq.heapify(self._waiters)
            self._grant()
            raise

    def _free(self, network: Network) -> bool:
        if sum(self._busy.values()) >= self.total:
            return False
        return self._busy[network] < self.per_network.get(network, self.total)

    def _grant(self) -> None:
        """Hand free slots to waiters, best rank first, skipping those whose network is full."""
        kept: list[_Waiter] = []
        while self._waiters and sum(self._busy.values()) < self.total:
            waiter = heapq.heappop(self._waiters)
            if waiter.granted.done():
                continue
            if self._free(waiter.network):
                self._busy[waiter.network] += 1
                waiter.granted.set_result(None)
            else:
                kept.append(waiter)
        for waiter in kept:
            heapq.heappush(self._waiters, waiter)
