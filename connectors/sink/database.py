"""One PostgreSQL connection that outlives PostgreSQL restarts: work is retried after a backoff.

`run(work)` calls `work(conn)` until it completes. When the server is unreachable, restarting, or
drops the connection, the connection is thrown away, the process logs what it waits for and
tries again after an exponential backoff with jitter. `work` must be a whole transaction, so a
retry repeats it from the start; errors in the data itself are not retried here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg

from bigbrotr.errors import SinkError
from connectors.backoff import Backoff

log = logging.getLogger("bigbrotr.sink")

T = TypeVar("T")
CONNECT_TIMEOUT_S = 10.0

# What a restart, a crash or a network cut of the server looks like from here.
TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TransactionRollbackError,
)
# What no amount of waiting fixes: say so and stop.
FATAL: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
    asyncpg.exceptions.InvalidPasswordError,
    asyncpg.exceptions.InvalidCatalogNameError,
    asyncpg.exceptions.UndefinedTableError,
)


def where(dsn: str) -> str:
    """Host, port and database of a DSN, never its credentials, for messages."""
    parts = urlsplit(dsn)
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"


class Database:
    """Connect lazily; `setup(conn)` runs on every new connection (staging tables)."""

    def __init__(
        self,
        dsn: str,
        backoff: Backoff,
        setup: Callable[[Any], Awaitable[None]] | None = None,
    ) -> None:
        self.dsn = dsn
        self.where = where(dsn)
        self._backoff = backoff
        self._setup = setup
        self._conn: Any = None
        self.waits = 0

    async def run(self, work: Callable[[Any], Awaitable[T]]) -> T:
        failures = 0
        while True:
            try:
                conn = await self._connection()
                result = await work(conn)
            except asyncio.CancelledError:
                # Cancelled mid-transaction (a stop past its deadline): nothing was committed,
                # and the connection's state is unknown, so it goes.
                self.terminate()
                raise
            except FATAL as exc:
                await self.close()
                raise SinkError(
                    f"PostgreSQL at {self.where} refused the sink: {exc}; check database.url and "
                    "that `bigbrotr migrate` ran on that database"
                ) from exc
            except TRANSIENT as exc:
                await self.close()
                failures += 1
                self.waits += 1
                delay = self._backoff.delay(failures)
                log.warning(
                    "waiting for PostgreSQL at %s (%s: %s); try %d in %.1f s",
                    self.where,
                    type(exc).__name__,
                    exc,
                    failures + 1,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            if failures:
                log.warning("PostgreSQL at %s is back after %d failed tries", self.where, failures)
            return result

    async def _connection(self) -> Any:
        if self._conn is None or self._conn.is_closed():
            conn = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT_S)
            try:
                if self._setup is not None:
                    await self._setup(conn)
            except BaseException:
                conn.terminate()
                raise
            self._conn = conn
        return self._conn

    def terminate(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with suppress(*TRANSIENT, asyncpg.PostgresError):
            await asyncio.wait_for(conn.close(), 2.0)
        if not conn.is_closed():
            conn.terminate()
