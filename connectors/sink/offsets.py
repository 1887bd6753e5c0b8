"""The sink's Kafka offsets, kept in PostgreSQL with the rows they cover (`sink_offsets`).

Each process remembers, per partition it owns, the offset it believes is stored (`expected`). A
batch first locks and checks those rows: if another process, or a commit whose answer was lost
with the connection, moved one, the batch is `Fenced` and rolled back, and the process seeks to
what is stored. So a zombie never writes over its successor, and a commit that did happen is
never applied twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Partition = tuple[str, int]
"""(full topic name, partition number)"""


class Fenced(Exception):  # noqa: N818  (a state, not a failure of ours)
    """Stored offsets are not what this process expected: someone else moved them."""

    def __init__(self, moved: Mapping[Partition, int | None]) -> None:
        shown = ", ".join(f"{t}[{p}]={o}" for (t, p), o in sorted(moved.items(), key=str))
        super().__init__(f"stored offsets moved under this process: {shown}")
        self.moved = dict(moved)


async def load_offsets(conn: Any, group: str, topics: list[str]) -> dict[Partition, int]:
    rows = await conn.fetch(
        "SELECT topic, partition, next_offset FROM sink_offsets "
        "WHERE consumer_group = $1 AND topic = ANY($2::text[])",
        group,
        topics,
    )
    return {(row["topic"], row["partition"]): row["next_offset"] for row in rows}


async def claim(conn: Any, group: str, expected: Mapping[Partition, int | None]) -> None:
    """Lock the rows of `expected` for this transaction; `Fenced` if any differs from it."""
    topics = [topic for topic, _ in expected]
    partitions = [partition for _, partition in expected]
    rows = await conn.fetch(
        """SELECT o.topic, o.partition, o.next_offset
           FROM sink_offsets o
           JOIN unnest($2::text[], $3::int[]) AS w (topic, partition) USING (topic, partition)
           WHERE o.consumer_group = $1
           ORDER BY o.topic, o.partition
           FOR UPDATE OF o""",
        group,
        topics,
        partitions,
    )
    stored: dict[Partition, int | None] = {
        (r["topic"], r["partition"]): r["next_offset"] for r in rows
    }
    moved = {key: stored.get(key) for key, offset in expected.items() if stored.get(key) != offset}
    if moved:
        raise Fenced(moved)


async def store(conn: Any, group: str, positions: Mapping[Partition, int]) -> None:
    """Record the next offset to read per partition, in the caller's transaction."""
    await conn.execute(
        """INSERT INTO sink_offsets (consumer_group, topic, partition, next_offset)
           SELECT $1, topic, partition, next_offset
           FROM unnest($2::text[], $3::int[], $4::bigint[]) AS p (topic, partition, next_offset)
           ON CONFLICT (consumer_group, topic, partition) DO UPDATE
           SET next_offset = excluded.next_offset, updated_at = now()""",
        group,
        [topic for topic, _ in positions],
        [partition for _, partition in positions],
        list(positions.values()),
    )


async def reset(
    conn: Any, group: str, topics: list[str], positions: Mapping[Partition, int]
) -> None:
    """Replace the group's offsets of `topics` by `positions` (a replay's starting points)."""
    async with conn.transaction():
        await conn.execute(
            "DELETE FROM sink_offsets WHERE consumer_group = $1 AND topic = ANY($2::text[])",
            group,
            topics,
        )
        await store(conn, group, positions)
