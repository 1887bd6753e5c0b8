"""Reads of the archive for the query API and the relay, on a pool of read-only connections.

Two locks keep it read-only: the pool refuses to open when its role may write any table (it must
be a role like `bigbrotr_reader`, migration 0007), and every session starts read-only. Each
statement is cancelled after `query_timeout_s`, so no request can hold the database for long.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import orjson

from bigbrotr.archive.keyset import Keyset
from bigbrotr.archive.query import events_query
from bigbrotr.config import DatabaseSettings
from bigbrotr.errors import ArchiveError
from bigbrotr.nostr import Event, Filter

_CONNECT_TIMEOUT_S = 10.0
_TOP_KINDS = 20
_PROBE_COLUMNS = (
    "probed_at",
    "open_ok",
    "open_rtt_ms",
    "read_ok",
    "read_rtt_ms",
    "write_ok",
    "write_rtt_ms",
)
_WRITABLE = """
SELECT r.rolname, r.rolsuper, to_regclass('public.events') IS NOT NULL AS migrated,
       (SELECT string_agg(c.relname, ', ' ORDER BY c.relname)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
          AND has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')) AS writable
FROM pg_roles r WHERE r.rolname = current_user
"""
_RELAYS = """
SELECT r.url, r.network, r.source, r.discovered_at, r.status,
       nip11.document AS nip11, nip11.observed_at AS nip11_observed_at,
       p.probed_at, p.open_ok, p.open_rtt_ms, p.read_ok, p.read_rtt_ms, p.write_ok,
       p.write_rtt_ms, p.error::text AS error, day.probes AS probes_24h, day.opens AS opens_24h
FROM relays r
LEFT JOIN LATERAL (
    SELECT d.document::text AS document, m.observed_at
    FROM relay_metadata m
    JOIN metadata_documents d ON d.sha256 = m.document_sha256 AND d.kind = m.kind
    WHERE m.relay_url = r.url AND m.kind = 'nip11'
    ORDER BY m.observed_at DESC LIMIT 1
) nip11 ON true
LEFT JOIN LATERAL (
    SELECT * FROM relay_probes WHERE relay_url = r.url ORDER BY probed_at DESC LIMIT 1
) p ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS probes, count(*) FILTER (WHERE open_ok) AS opens
    FROM relay_probes WHERE relay_url = r.url AND probed_at > now() - interval '24 hours'
) day ON true
WHERE ($1::text IS NULL OR r.url = $1)
  AND ($2::text IS NULL OR r.network = $2)
  AND ($3::text IS NULL OR r.url > $3)
ORDER BY r.url
LIMIT $4
"""
_COUNTS = """
SELECT (SELECT count(*) FROM events) AS events,
       (SELECT count(*) FROM sightings) AS sightings,
       (SELECT count(*) FROM relay_probes) AS probes,
       (SELECT min(created_at) FROM events) AS oldest,
       (SELECT max(created_at) FROM events) AS newest
"""
_RELAY_COUNTS = "SELECT network, status, count(*) AS relays FROM relays GROUP BY 1, 2"
_KINDS = "SELECT kind, count(*) AS events FROM events GROUP BY kind ORDER BY 2 DESC, 1 LIMIT $1"


class Archive:
    """The archive as the API sees it; `open` before use, `close` after."""

    def __init__(
        self, database: DatabaseSettings, *, pool_size: int, query_timeout_s: float
    ) -> None:
        self._database = database
        self._pool_size = pool_size
        self._timeout_ms = int(query_timeout_s * 1000)
        self._pool: asyncpg.Pool | None = None
        self.where = _where(database.url)

    async def open(self) -> None:
        """Connect and check the role is read-only; ArchiveError says what to fix otherwise."""
        settings = {
            "default_transaction_read_only": "on",
            "statement_timeout": str(self._timeout_ms),
            "application_name": "bigbrotr-api",
        }
        try:
            pool = await asyncpg.create_pool(
                self._database.dsn(),
                min_size=1,
                max_size=self._pool_size,
                timeout=_CONNECT_TIMEOUT_S,
                server_settings=settings,
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise ArchiveError(
                f"cannot connect to the archive at {self.where} ({type(exc).__name__}: {exc}); "
                "check api.database_url, and that `bigbrotr migrate` created bigbrotr_reader"
            ) from exc
        try:
            await _check_read_only(pool, self.where)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        if self._pool is None:
            raise ArchiveError("the archive is not open")
        try:
            async with self._pool.acquire() as conn:
                yield conn
        except asyncpg.QueryCanceledError as exc:
            raise ArchiveError(
                f"the query ran past api.query_timeout_s ({self._timeout_ms} ms); narrow it "
                "(ids, authors, kinds, since/until) or lower its limit"
            ) from exc
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise ArchiveError(
                f"the archive at {self.where} failed ({type(exc).__name__}: {exc})"
            ) from exc

    async def events(self, flt: Filter, *, limit: int, after: Keyset | None = None) -> list[Event]:
        """Up to `limit` events matching `flt`, newest first, after `after`."""
        query = events_query(flt, limit=limit, after=after)
        if query is None:
            return []
        async with self._connection() as conn:
            rows = await conn.fetch(query.sql, *query.args)
        return [_event(row) for row in rows]

    async def relays(
        self,
        *,
        limit: int,
        url: str | None = None,
        network: str | None = None,
        after: str | None = None,
    ) -> list[dict[str, Any]]:
        """Relays by URL with their newest NIP-11 document, newest probe and 24 h uptime."""
        async with self._connection() as conn:
            rows = await conn.fetch(_RELAYS, url, network, after, limit)
        return [_relay(row) for row in rows]

    async def stats(self) -> dict[str, Any]:
        """Counts straight from the tables, in one snapshot."""
        async with self._connection() as conn, conn.transaction(isolation="repeatable_read"):
            counts = await conn.fetchrow(_COUNTS)
            relays = await conn.fetch(_RELAY_COUNTS)
            kinds = await conn.fetch(_KINDS, _TOP_KINDS)
        by_network: dict[str, int] = {}
        by_status: dict[str, int] = {}
        for row in relays:
            by_network[row["network"]] = by_network.get(row["network"], 0) + row["relays"]
            by_status[row["status"]] = by_status.get(row["status"], 0) + row["relays"]
        return {
            "events": counts["events"],
            "sightings": counts["sightings"],
            "probes": counts["probes"],
            "oldest_created_at": counts["oldest"],
            "newest_created_at": counts["newest"],
            "relays": sum(by_network.values()),
            "relays_by_network": by_network,
            "relays_by_status": by_status,
            "top_kinds": [{"kind": row["kind"], "events": row["events"]} for row in kinds],
            "counted_at": int(time.time()),
        }


async def _check_read_only(pool: asyncpg.Pool, where: str) -> None:
    row = await pool.fetchrow(_WRITABLE)
    if not row["migrated"]:
        raise ArchiveError(f"the archive at {where} has no events table; run `bigbrotr migrate`")
    if row["rolsuper"] or row["writable"]:
        what = "is a superuser" if row["rolsuper"] else f"may write {row['writable']}"
        raise ArchiveError(
            f"role {row['rolname']} {what}; the API must read as a read-only role: leave "
            "api.database_url unset to use bigbrotr_reader, or name a role with SELECT only"
        )


def _event(row: Any) -> Event:
    return Event(
        bytes(row["id"]).hex(),
        bytes(row["pubkey"]).hex(),
        row["created_at"],
        row["kind"],
        tuple(tuple(tag) for tag in orjson.loads(row["tags"])),
        row["content"],
        bytes(row["sig"]).hex(),
    )


def _relay(row: Any) -> dict[str, Any]:
    probe = None
    if row["probed_at"] is not None:
        probe = {name: row[name] for name in _PROBE_COLUMNS}
        probe["error"] = orjson.loads(row["error"]) if row["error"] is not None else None
    return {
        "url": row["url"],
        "network": row["network"],
        "source": row["source"],
        "discovered_at": row["discovered_at"],
        "status": row["status"],
        "nip11": orjson.loads(row["nip11"]) if row["nip11"] is not None else None,
        "nip11_observed_at": row["nip11_observed_at"],
        "health": {
            "state": _state(row),
            "last_probe": probe,
            "probes_24h": row["probes_24h"],
            "opens_24h": row["opens_24h"],
        },
    }


def _state(row: Any) -> str:
    """up: the newest probe opened and read; down: it did not; unknown: never probed."""
    if row["probed_at"] is None:
        return "unknown"
    return "up" if row["open_ok"] and row["read_ok"] is not False else "down"


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.username}@{parts.hostname}:{parts.port or 5432}{parts.path}"
