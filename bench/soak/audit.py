"""Where a soak's missing events were lost, read from the topics and the database at the end: an
event the archive lacks was either never pulled from a relay (the synchronizer), pulled but never
emitted on `events` (the worker), or emitted but never stored (the sink). Publishing times place
the losses in the run (a cluster at a live-session renewal points at the synchronizer's hand-over).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import asyncpg

from bench.e2e.readback import read_topic
from bigbrotr.codec import Codec
from bigbrotr.config import Settings
from bigbrotr.nostr.url import normalize_relay_url


@dataclass
class Losses:
    stored: int = 0
    missing_at: list[float] = field(default_factory=list)  # publishing times of missing events
    not_pulled: Counter[str] = field(default_factory=Counter)  # relay -> published, never raw
    not_emitted: int = 0  # pulled from some relay, never on `events`
    not_stored: int = 0  # on `events`, not in the database
    raw_records: int = 0  # on `events.raw`, all sources
    pulled_pairs: int = 0  # distinct (relay, event) among them

    @property
    def amplification(self) -> str:
        """Raw records per (relay, event) pair: above 1, the synchronizer pulled events again."""
        per_pair = self.raw_records / self.pulled_pairs if self.pulled_pairs else float("nan")
        return (
            f"events.raw holds {self.raw_records:,} records for {self.pulled_pairs:,} "
            f"(relay, event) pairs: {per_pair:.3f} per pair"
        )

    def describe(self, started: float) -> list[str]:
        if not self.missing_at:
            return []
        minutes = Counter(int((at - started) // 60) for at in self.missing_at)
        relays = ", ".join(f"{relay} {n:,}" for relay, n in sorted(self.not_pulled.items()) if n)
        lines = [
            f"missing {len(self.missing_at):,}: never pulled from {relays or '-'}"
            + f"; pulled, not on events {self.not_emitted:,}; on events, not stored "
            f"{self.not_stored:,}",
            "missing by minute of publishing: "
            + ", ".join(f"{minute}: {n}" for minute, n in sorted(minutes.items())),
        ]
        return lines


async def find_losses(
    settings: Settings, published: Mapping[str, float], relays: Sequence[str]
) -> Losses:
    codec = Codec()
    relays = [normalize_relay_url(relay) for relay in relays]
    pulled: dict[str, set[str]] = {relay: set() for relay in relays}
    raw = await read_topic(settings, "events.raw")
    for message in raw:
        record = codec.decode("RawEvent", message.value)
        pulled.setdefault(record["relay_url"], set()).add(json.loads(record["raw"])["id"])
    emitted = {codec.decode("Event", m.value)["id"] for m in await read_topic(settings, "events")}
    conn = await asyncpg.connect(settings.database.dsn())
    try:
        rows = await conn.fetch(
            "SELECT encode(id, 'hex') FROM events WHERE id = ANY($1::bytea[])",
            [bytes.fromhex(event_id) for event_id in published],
        )
    finally:
        await conn.close()
    stored = {row[0] for row in rows}
    found = Losses(
        stored=len(stored),
        raw_records=len(raw),
        pulled_pairs=sum(len(ids) for ids in pulled.values()),
    )
    any_relay = set().union(*pulled.values())
    for event_id, at in published.items():
        if event_id in stored:
            continue
        found.missing_at.append(at)
        for relay in relays:
            found.not_pulled[relay] += event_id not in pulled[relay]
        found.not_emitted += event_id in any_relay and event_id not in emitted
        found.not_stored += event_id in emitted
    return found
