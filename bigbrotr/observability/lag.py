"""Consumer lag as a Prometheus gauge, computed at scrape time: end offsets minus positions.

Positions come from a callable, since processes keep them in different places: Kafka's committed
offsets for the worker and the finder, the offsets stored with the rows for the sink.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bigbrotr.errors import BigBrotrError
from bigbrotr.observability.offsets import BrokerOffsets, Partition

log = logging.getLogger("bigbrotr.metrics")

Positions = Callable[[], Mapping[Partition, int | None]]
"""Next offset to read per partition the process owns; None means from the beginning."""


def lag_by_partition(
    ends: Mapping[Partition, int],
    positions: Mapping[Partition, int | None],
    starts: Mapping[Partition, int],
) -> dict[Partition, int]:
    """Records between each position and its partition's end (never below zero)."""
    lag = {}
    for partition, end in ends.items():
        position = positions.get(partition)
        if position is None:
            position = starts.get(partition, 0)
        lag[partition] = max(end - position, 0)
    return lag


class ConsumerLag(Collector):
    """`bigbrotr_consumer_lag{group,topic,partition}` for the partitions `positions` names."""

    def __init__(self, offsets: BrokerOffsets, group: str, positions: Positions) -> None:
        self._offsets = offsets
        self._group = group
        self._positions = positions

    def describe(self) -> list[GaugeMetricFamily]:
        """Nothing: registering must not ask the broker (the default registry would collect)."""
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "bigbrotr_consumer_lag",
            "Records between the consumer's position and the partition's end",
            labels=["group", "topic", "partition"],
        )
        try:
            positions = dict(self._positions())
            partitions = sorted(positions)
            unknown = [p for p, offset in positions.items() if offset is None]
            lag = lag_by_partition(
                self._offsets.ends(partitions), positions, self._offsets.starts(unknown)
            )
        except BigBrotrError as exc:
            log.warning("consumer lag not measured: %s", exc)
            lag = {}
        for (topic, partition), records in sorted(lag.items()):
            family.add_metric([self._group, topic, str(partition)], records)
        yield family


def committed_positions(offsets: BrokerOffsets, group: str, topics: list[str]) -> Positions:
    """Positions of a group that commits to Kafka: every partition of `topics`, committed or not."""

    def positions() -> Mapping[Partition, int | None]:
        committed = offsets.committed(group)
        return {p: committed.get(p) for p in offsets.partitions(topics)}

    return positions
