"""One topic created on the real broker, for a test that needs one outside the configured set."""

from __future__ import annotations

from confluent_kafka.admin import NewTopic

from bigbrotr.topics import new_admin


def create_topic(bootstrap: str, name: str, partitions: int, replication: int = 1) -> None:
    """Returns once the broker has created it."""
    admin = new_admin(bootstrap)  # kept: a collected client cancels its pending requests
    admin.create_topics([NewTopic(name, partitions, replication)])[name].result(30)
