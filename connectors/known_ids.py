"""The ids the archive already holds for one relay and time window: negentropy's side of the set.

A protocol, so a source reading the stream state could replace the database one. The database
source reads what the sink stored: the `sightings` of the relay joined with their `events`, so
only validated events count; an event still on its way to the database is simply fetched again
(and deduplicated by the stream).
"""

from __future__ import annotations

from typing import Protocol

import asyncpg

from bigbrotr.errors import ArchiveError
from connectors.negentropy import Item

_QUERY = """
SELECT e.created_at, e.id
FROM sightings s JOIN events e ON e.id = s.event_id
WHERE s.relay_url = $1 AND e.created_at BETWEEN $2 AND $3
"""
_CONNECT_TIMEOUT_S = 10.0


class KnownIds(Protocol):
    async def __call__(self, relay_url: str, since: int, until: int) -> list[Item]:
        """(created_at, id) of every archived event the relay served in `since..until`."""
        ...


class DatabaseKnownIds:
    """A `KnownIds` over the archive's PostgreSQL; opens its pool on first use."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._pool: asyncpg.Pool | None = None

    async def __call__(self, relay_url: str, since: int, until: int) -> list[Item]:
        try:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._dsn, min_size=0, max_size=4, timeout=_CONNECT_TIMEOUT_S
                )
            rows = await self._pool.fetch(_QUERY, relay_url, since, until)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise ArchiveError(
                f"cannot read the archived ids of {relay_url} ({type(exc).__name__}: {exc}); "
                "check database.url and that `bigbrotr migrate` has run"
            ) from exc
        return [(row["created_at"], bytes(row["id"])) for row in rows]

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
