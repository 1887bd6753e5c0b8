"""Latency from `seen_at` (the synchronizer's clock when the relay's frame arrived) to the commit
that made the event's row visible in PostgreSQL.

The schema keeps no commit time and `track_commit_timestamp` is off on the dev server, so the
commit time is sampled: the run's own database gets an extra identity column on `events` (the
sink names its columns, so it does not notice), and a poller asks every `interval_s` for the rows
past the highest number it has seen. One sink commits one transaction at a time, so numbers grow
in commit order and a row is new at the first poll after its commit: the poll's clock is its
commit time, late by at most the poll interval plus the query. Valid for one sink process only.
"""

from __future__ import annotations

import asyncio
import time
from array import array

import asyncpg

_POLL = """
SELECT bench_seq, extract(epoch FROM first_seen_at)::float8 AS seen
FROM events WHERE bench_seq > $1 ORDER BY bench_seq
"""


async def add_commit_order(dsn: str) -> None:
    """The extra column and its index, on a freshly migrated, empty database."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "ALTER TABLE events ADD COLUMN bench_seq bigint GENERATED ALWAYS AS IDENTITY;"
            "CREATE INDEX events_bench_seq_idx ON events (bench_seq)"
        )
    finally:
        await conn.close()


class CommitLatency:
    """`await watch.poll()` repeatedly; `rows` events seen, `percentile(p)` in seconds."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._last = 0
        self.rows = 0
        self.latencies = array("d")
        self.first_commit: float | None = None  # wall clock
        self.last_commit: float | None = None

    async def poll(self) -> int:
        """Rows newly committed since the last poll (0 while PostgreSQL is away)."""
        try:
            conn = await asyncpg.connect(self._dsn, timeout=5)
        except (OSError, TimeoutError, asyncpg.PostgresError):
            return 0
        try:
            found = await conn.fetch(_POLL, self._last)
        except (OSError, asyncpg.PostgresError):
            return 0
        finally:
            await conn.close()
        now = time.time()
        for row in found:
            self.latencies.append(now - row["seen"])
        if found:
            self._last = found[-1]["bench_seq"]
            self.rows += len(found)
            self.first_commit = self.first_commit or now
            self.last_commit = now
        return len(found)

    async def follow(self, interval_s: float) -> None:
        """Poll until cancelled."""
        while True:
            await self.poll()
            await asyncio.sleep(interval_s)

    def percentile(self, share: float) -> float:
        """Nearest-rank percentile of the latencies seen (`share` in 0..1); nan when none."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]
