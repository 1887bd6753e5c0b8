"""A batch of records and the records its processing sends, grouped by transaction.

Faust's per-record path costs far more than the validation it carries: a future, a channel hop
and a producer call per output record, and a changelog message built per table write. So agents
take every record already fetched (up to `streams.batch_records`) as one `Batch`, and what they
send is collected here and handed to the producer one destination partition at a time.

Every output joins the transaction of the partition of the record that produced it: offsets and
outputs of a source partition then commit or abort together, whoever owns it next.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

from aiokafka.partitioner import murmur2
from faust.types import EventT

from bigbrotr.producer import Headers

Record = tuple[bytes | None, bytes | None, Headers | None]
Destination = tuple[str, int | None]


class Batch:
    """Records of one agent's topic, in offset order per partition, processed under one lock."""

    def __init__(self, events: Sequence[EventT[Any]]) -> None:
        self.events = events
        self._outputs: defaultdict[int, defaultdict[Destination, list[Record]]] = defaultdict(
            lambda: defaultdict(list)
        )

    def send(
        self,
        source: int,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        """Queue a record for `topic`, in the transaction of source partition `source`.

        Without a `partition` the key chooses it as Kafka's Java client would (murmur2), so
        records about one event id land together whoever wrote them.
        """
        self._outputs[source][(topic, partition)].append((key, value, headers))

    def outputs(self) -> Iterator[tuple[int, str, int | None, list[Record]]]:
        """(source partition, topic, destination partition or None, records) to send."""
        for source, destinations in self._outputs.items():
            for (topic, partition), records in destinations.items():
                yield source, topic, partition, records


@lru_cache(maxsize=16_384)
def key_partition(key: bytes | None, partitions: int) -> int:
    """Kafka's default partition for a key (an absent key is sent as empty bytes).

    Cached: a record's outputs to several topics usually share its key.
    """
    hashed: int = murmur2(key or b"")
    return (hashed & 0x7FFFFFFF) % partitions


def by_partition(records: list[Record], partitions: int) -> dict[int, list[Record]]:
    """Records grouped by their key's partition, in their order."""
    grouped: defaultdict[int, list[Record]] = defaultdict(list)
    for record in records:
        grouped[key_partition(record[0], partitions)].append(record)
    return grouped
