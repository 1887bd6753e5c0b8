"""The monitor's share of the relays: the `relays` partitions its consumer group assigns it.

Monitor processes in one group split the relays between them, like synchronizers do; adding a
process adds probing capacity. The monitor asks for its set every round, so it needs no word of
each change: a relay given away is simply not probed again here.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from bigbrotr.config import Settings
from connectors.assignment import AssignedRelay, RelayAssignment


class AssignedRelays:
    """A `RelaySource` backed by a `RelayAssignment`; run `assignment.run()` beside the monitor."""

    def __init__(self, settings: Settings) -> None:
        group = settings.kafka.topic_prefix + settings.monitor.group_id
        self.assignment = RelayAssignment(settings.kafka, group, self)

    async def __call__(self) -> Collection[str]:
        return self.assignment.relays

    def relays_added(self, relays: Sequence[AssignedRelay]) -> None:
        """Picked up by the next round."""

    async def relays_revoked(self, urls: Collection[str]) -> None:
        """Dropped from the next round."""
