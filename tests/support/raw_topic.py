"""Reads `events.raw` in the background, so a test can see what arrived and when."""

from __future__ import annotations

import json
from dataclasses import dataclass

from aiokafka import ConsumerRecord

from bigbrotr.codec import Codec
from bigbrotr.config import Settings
from bigbrotr.tail import TopicTail


@dataclass(frozen=True, slots=True)
class RawRecord:
    event_id: str
    relay_url: str | None
    source: str
    arrived: float


class RawTail(TopicTail):
    """`async with RawTail(settings) as tail:` collects every record of `events.raw`."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, "events.raw")
        self._codec = Codec()
        self.records: list[RawRecord] = []

    def take(self, message: ConsumerRecord[bytes, bytes], arrived: float) -> None:
        value = self._codec.decode("RawEvent", message.value)
        event_id = str(json.loads(value["raw"])["id"])
        self.records.append(RawRecord(event_id, value["relay_url"], value["source"], arrived))

    def ids(self, relay_url: str | None = None, source: str | None = None) -> set[str]:
        return {
            record.event_id
            for record in self.records
            if (relay_url is None or record.relay_url == relay_url)
            and (source is None or record.source == source)
        }

    def arrival(self, event_id: str) -> float | None:
        return next((r.arrived for r in self.records if r.event_id == event_id), None)
