"""Waits until the broker's metadata lists topics with a leader for every partition.

Faust creates its changelog and internal topics and subscribes to them at once. A broker that has
not yet published a new topic in its metadata (a busy KRaft controller takes a moment) gets it
left out of the first assignment: aiokafka logs "Ignoring missing topic", the worker runs without
that topic's partitions, and a commit then finds a table whose changelog no partition group
holds, which crashed the worker (measured: 1 start in 3 failed so while other topics were being
created and deleted on the broker).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from aiokafka import AIOKafkaClient

log = logging.getLogger("bigbrotr.worker")

POLL_S = 0.1


async def until_in_metadata(
    client: AIOKafkaClient, topics: Iterable[str], timeout_s: float
) -> list[str]:
    """Return once every topic is in the metadata with a leader for each partition; the topics
    still missing when `timeout_s` ran out (logged; the subscription then goes ahead, as before,
    and a later rebalance picks them up)."""
    wanted = sorted(set(topics))
    deadline = time.monotonic() + timeout_s
    while True:
        cluster = await client.fetch_all_metadata()
        missing = [
            topic
            for topic in wanted
            if not (partitions := cluster.partitions_for_topic(topic))
            or cluster.available_partitions_for_topic(topic) != partitions
        ]
        if not missing:
            return []
        if time.monotonic() >= deadline:
            log.warning(
                "after %.0fs the broker's metadata still lacks %s; subscribing anyway (input "
                "topics such as events.raw come from `bigbrotr topics create`)",
                timeout_s,
                ", ".join(missing),
            )
            return missing
        await asyncio.sleep(POLL_S)
