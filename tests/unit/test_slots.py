"""Pull slots: the global and per-network bounds hold, priority relays are served first."""

from __future__ import annotations

import asyncio

import pytest

from bigbrotr.nostr import Network
from connectors.slots import PullSlots

CLEAR, TOR = Network.CLEARNET, Network.TOR


class Holder:
    """A task that takes a slot, records that it got one, and holds it until released."""

    def __init__(
        self,
        slots: PullSlots,
        name: str,
        network: Network,
        got: list[str],
        *,
        priority: bool = False,
    ) -> None:
        self.release = asyncio.Event()
        self.task = asyncio.create_task(self._run(slots, name, network, got, priority))

    async def _run(
        self, slots: PullSlots, name: str, network: Network, got: list[str], priority: bool
    ) -> None:
        async with slots.hold(network, priority=priority):
            got.append(name)
            await self.release.wait()

    async def finish(self) -> None:
        self.release.set()
        await self.task


async def settle() -> None:
    """Let every ready task run until all of them wait again."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_the_global_bound_holds_and_priority_waiters_go_first() -> None:
    slots = PullSlots(2, {CLEAR: 2})
    got: list[str] = []
    first, second = Holder(slots, "a", CLEAR, got), Holder(slots, "b", CLEAR, got)
    await settle()
    late = Holder(slots, "late", CLEAR, got)
    await settle()
    urgent = Holder(slots, "urgent", CLEAR, got, priority=True)
    await settle()
    assert got == ["a", "b"]
    assert slots.waiting == 2

    await first.finish()
    await settle()
    assert got == ["a", "b", "urgent"]
    await second.finish()
    await settle()
    assert got == ["a", "b", "urgent", "late"]
    await urgent.finish()
    await late.finish()
    assert slots.busy == {}


async def test_a_full_network_does_not_hold_up_another_network() -> None:
    slots = PullSlots(3, {CLEAR: 3, TOR: 1})
    got: list[str] = []
    tor_1 = Holder(slots, "tor 1", TOR, got)
    await settle()
    tor_2 = Holder(slots, "tor 2", TOR, got, priority=True)
    clear = Holder(slots, "clear", CLEAR, got)
    await settle()
    assert got == ["tor 1", "clear"]
    assert slots.busy == {TOR: 1, CLEAR: 1}

    await tor_1.finish()
    await settle()
    assert got == ["tor 1", "clear", "tor 2"]
    await tor_2.finish()
    await clear.finish()


async def test_a_cancelled_waiter_gives_its_turn_away() -> None:
    slots = PullSlots(1, {CLEAR: 1})
    got: list[str] = []
    holder = Holder(slots, "holder", CLEAR, got)
    await settle()
    cancelled = Holder(slots, "cancelled", CLEAR, got, priority=True)
    after = Holder(slots, "after", CLEAR, got)
    await settle()
    cancelled.task.cancel()
    await settle()
    await holder.finish()
    await settle()
    assert got == ["holder", "after"]
    with pytest.raises(asyncio.CancelledError):
        await cancelled.task
    await after.finish()
    assert slots.busy == {}
    assert slots.waiting == 0


async def test_resizing_grants_waiters_at_once_and_narrows_as_slots_are_released() -> None:
    slots = PullSlots(1, {CLEAR: 1})
    got: list[str] = []
    holders = [Holder(slots, name, CLEAR, got) for name in ("a", "b", "c")]
    await settle()
    assert got == ["a"]

    slots.resize(3, {CLEAR: 3})
    await settle()
    assert got == ["a", "b", "c"], "wider bounds grant the waiters without a release"

    slots.resize(1, {CLEAR: 1})
    late = Holder(slots, "late", CLEAR, got)
    await settle()
    await holders[0].finish()
    await holders[1].finish()
    await settle()
    assert got == ["a", "b", "c"], "two of three held slots were released: still over one"
    await holders[2].finish()
    await settle()
    assert got == ["a", "b", "c", "late"]
    await late.finish()
    assert slots.busy == {}


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        PullSlots(0, {CLEAR: 1})
    slots = PullSlots(1, {CLEAR: 1})
    with pytest.raises(ValueError, match="at least 1"):
        slots.resize(2, {CLEAR: 0})
