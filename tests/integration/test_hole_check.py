"""The worker's hole check on a real broker: a transaction marker is an empty hole, a committed
record is not, and one kept consumer answers check after check about different partitions."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Producer
from faust.types import TP

from streams.progress import HoleCheck
from tests.support.topics import create_topic

pytestmark = pytest.mark.integration


@pytest.fixture
def topic(kafka_bootstrap: str, topic_prefix: str) -> str:
    """Partition 0: records at 0 and 1, a commit marker at 2, records at 3 and 4, a marker at 5.
    Partition 1: plain records at 0..2, no transaction."""
    name = f"{topic_prefix}holes"
    create_topic(kafka_bootstrap, name, 2)
    transactional = Producer(
        {"bootstrap.servers": kafka_bootstrap, "transactional.id": f"holes-{uuid.uuid4()}"}
    )
    transactional.init_transactions(30)
    for _ in range(2):
        transactional.begin_transaction()
        for number in range(2):
            transactional.produce(name, f"record {number}".encode(), partition=0)
        transactional.commit_transaction(30)
    plain = Producer({"bootstrap.servers": kafka_bootstrap})
    for number in range(3):
        plain.produce(name, f"plain {number}".encode(), partition=1)
    plain.flush(30)
    return name


def test_markers_are_empty_holes_and_records_are_not(kafka_bootstrap: str, topic: str) -> None:
    holes = HoleCheck(kafka_bootstrap)
    try:
        assert holes.is_empty(TP(topic, 0), 2, 3)  # the first commit marker
        assert not holes.is_empty(TP(topic, 0), 1, 3)  # a record, then the marker
        assert not holes.is_empty(TP(topic, 1), 1, 2)  # another partition, same consumer
        assert holes.is_empty(TP(topic, 0), 5, 6)  # the last marker, at the end of the partition
        assert not holes.is_empty(TP(topic, 0), 0, 3)
    finally:
        holes.close()
