"""The `bigbrotr sync` service: follows every relay its share of the `relays` topic holds.

One `RelayFollower` task per assigned relay; the consumer group decides the share
(`connectors.assignment`), the pull slots bound how many relays are pulled at once, and each
follower paces its own relay (backoff, circuit breaker). Stopping cancels every follower before the
process leaves the group, so its relays move to the other processes at once, each resuming from
its cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Mapping, Sequence

from bigbrotr.codec import Codec
from bigbrotr.config import Settings, SyncSettings
from bigbrotr.nostr import Network
from bigbrotr.producer import new_producer
from connectors.assignment import AssignedRelay, RelayAssignment
from connectors.follower import (
    FollowContext,
    FollowerStatus,
    MaxLimitLookup,
    RelayFollower,
    no_max_limit,
)
from connectors.negentropy_pull import NegentropyPuller, negentropy_puller
from connectors.slots import PullSlots

log = logging.getLogger("bigbrotr.sync")


class SyncService:
    """`await service.run()` until `service.stop()` (or cancellation).

    `max_limit` looks up a relay's NIP-11 `max_limit` (for example from the monitor's probes); the
    default knows none, and pages stay at `connectors.page_size`.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        max_limit: MaxLimitLookup = no_max_limit,
        codec: Codec | None = None,
    ) -> None:
        self.settings = settings
        self.group_id = settings.kafka.topic_prefix + settings.sync.group_id
        self._max_limit = max_limit
        self._codec = codec or Codec(registry=settings.kafka.schema_registry_url)
        sync = settings.sync
        self.slots = PullSlots(sync.max_concurrent, _network_bounds(sync))
        self._priority = frozenset(sync.priority_relays)
        self._context: FollowContext | None = None
        self._followers: dict[str, tuple[RelayFollower, asyncio.Task[None]]] = {}
        self._stopping = asyncio.Event()
        self.running = asyncio.Event()

    @property
    def serving(self) -> frozenset[str]:
        """The relays this process follows now."""
        return frozenset(self._followers)

    @property
    def statuses(self) -> Mapping[str, FollowerStatus]:
        return {url: follower.status for url, (follower, _) in self._followers.items()}

    def reload(self, settings: Settings) -> None:
        """Take new relay lists, rates, limits and timeouts (SIGHUP): pull slots at once, each
        follower from its next pull or live session."""
        self.settings = settings
        sync = settings.sync
        self.slots.resize(sync.max_concurrent, _network_bounds(sync))
        self._priority = frozenset(sync.priority_relays)
        if self._context is not None:
            self._context.reload(settings)
        for follower, _ in self._followers.values():
            follower.priority = follower.relay.url in self._priority
            follower.reload()

    def stop(self) -> None:
        """Ask `run` to return; safe to call from a signal handler."""
        self._stopping.set()

    async def run(self) -> None:
        async with negentropy_puller(self.settings) as negentropy:
            await self._run(negentropy)

    async def _run(self, negentropy: NegentropyPuller | None) -> None:
        producer = new_producer(self.settings)
        await producer.start()
        self._context = FollowContext(
            self.settings, producer, self._codec, self.slots, self._max_limit, negentropy
        )
        assignment = RelayAssignment(self.settings.kafka, self.group_id, self, codec=self._codec)
        joined = asyncio.create_task(assignment.run(), name="relay assignment")
        stopping = asyncio.create_task(self._stopping.wait(), name="stop request")
        self.running.set()
        try:
            done, _ = await asyncio.wait({joined, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if joined in done:
                joined.result()
        finally:
            self.running.clear()
            stopping.cancel()
            try:
                async with asyncio.timeout(self.settings.sync.shutdown_timeout_s):
                    joined.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await joined
                    await self.relays_revoked(list(self._followers))
                    await producer.stop()
            except TimeoutError:
                log.warning(
                    "sync service did not stop within %.0fs; leaving the rest to Kafka's "
                    "session timeout",
                    self.settings.sync.shutdown_timeout_s,
                )

    def relays_added(self, relays: Sequence[AssignedRelay]) -> None:
        if self._context is None:
            raise RuntimeError("relays were assigned before the service started")
        for relay in relays:
            if relay.url in self._followers:
                continue
            follower = RelayFollower(relay, self._context, priority=relay.url in self._priority)
            task = asyncio.create_task(follower.run(), name=f"follow {relay.url}")
            self._followers[relay.url] = (follower, task)
            log.info("following %s", relay.url)

    async def relays_revoked(self, urls: Collection[str]) -> None:
        stopped = {url: entry[1] for url in urls if (entry := self._followers.pop(url, None))}
        for task in stopped.values():
            task.cancel()
        await asyncio.gather(*stopped.values(), return_exceptions=True)
        if stopped:
            log.info("stopped following %s", " ".join(sorted(stopped)))


def _network_bounds(sync: SyncSettings) -> dict[Network, int]:
    return {Network(name): bound for name, bound in sync.max_concurrent_per_network.items()}
