"""`bigbrotr replay`: rebuild a database from the topics, from their beginning or a point in time.

The end offsets are taken when the replay starts (as a read_committed reader sees them), and the
replay stops once every partition reached them, or keeps following with `follow`. It writes
through the sink itself, storing its offsets under the sink's group, so `bigbrotr sink` on the
rebuilt database continues exactly where the replay stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from bigbrotr.config import Settings
from bigbrotr.migrate import migrate
from connectors.sink.database import Database
from connectors.sink.offsets import Partition, reset
from connectors.sink.run import Totals
from connectors.sink.service import sink_group, sink_partitions, sink_parts, sink_topics
from connectors.sink.source import FixedSource, Source, offsets_at, watermarks

log = logging.getLogger("bigbrotr.sink")


def point_in_time_ms(text: str) -> int:
    """`--from`: unix seconds, or an ISO 8601 time (UTC unless it names an offset), as ms."""
    stripped = text.strip()
    if stripped.isdigit():
        return int(stripped) * 1000
    try:
        moment = datetime.fromisoformat(stripped)
    except ValueError as exc:
        raise ValueError(
            f"{text!r} is neither unix seconds nor an ISO 8601 time like 2024-05-01T12:00:00Z"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class Plan:
    """Where each partition starts and where the replay stops."""

    starts: dict[Partition, int]
    ends: dict[Partition, int]

    @property
    def total(self) -> int:
        return sum(max(self.ends[key] - start, 0) for key, start in self.starts.items())


def plan(
    settings: Settings, since_ms: int | None = None, ends: Mapping[Partition, int] | None = None
) -> Plan:
    partitions = sink_partitions(settings)
    marks = watermarks(settings, partitions)
    if since_ms is None:
        starts = {key: low for key, (low, _) in marks.items()}
    else:
        starts = offsets_at(settings, partitions, since_ms)
    stops = {key: high for key, (_, high) in marks.items()} if ends is None else dict(ends)
    return Plan(starts, {key: stops.get(key, starts[key]) for key in starts})


def progress_of(source: Source, replay: Plan) -> int:
    """Records of the plan read and stored so far (control records count as read)."""
    done = 0
    for key, start in replay.starts.items():
        stored = source.expected.get(key)
        at = max(stored if stored is not None else start, source.reached.get(key, -1))
        done += max(min(at, replay.ends[key]) - start, 0)
    return done


async def replay(
    settings: Settings,
    dsn: str,
    replay_plan: Plan,
    *,
    follow: bool = False,
    progress: Callable[[int, int], None] | None = None,
    publish_rejects: bool = True,
) -> Totals:
    """Migrate `dsn`, then write the plan's records into it; `progress(done, total)` after each
    batch. Records that cannot be stored go to `rejects` again unless `publish_rejects` is off."""
    await migrate(dsn)
    group = sink_group(settings)

    def fixed_source(_: Database) -> Source:
        return FixedSource(settings, replay_plan.starts)

    async with sink_parts(settings, dsn, fixed_source, publish_rejects=publish_rejects) as sink:
        await sink.database.run(
            lambda conn: reset(conn, group, sink_topics(settings), replay_plan.starts)
        )
        total = replay_plan.total
        caught_up = False

        def done() -> bool:
            nonlocal caught_up
            count = progress_of(sink.source, replay_plan)
            if progress is not None:
                progress(count, total)
            if count < total or caught_up:
                return False
            caught_up = True
            if follow:
                log.info("replay reached the end offsets it saw at start; following live")
            return not follow

        def at_end() -> bool:
            reached = sink.source.reached
            return all(reached.get(key, -1) >= end for key, end in replay_plan.ends.items())

        return await sink.run(done, at_end)
