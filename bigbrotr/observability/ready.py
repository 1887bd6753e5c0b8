"""Readiness checks: can this process reach what it depends on right now?"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
from confluent_kafka import KafkaException

from bigbrotr.topics import new_admin

Check = Callable[[], None]
"""Returns when the dependency answers; raises with the reason when it does not."""


def kafka_check(bootstrap_servers: str, timeout_s: float) -> Check:
    """Kafka is ready when a broker answers a metadata request."""
    admin = new_admin(bootstrap_servers)

    def check() -> None:
        try:
            admin.list_topics(timeout=timeout_s)
        except KafkaException as exc:
            raise ConnectionError(f"no Kafka broker answers at {bootstrap_servers}") from exc

    return check


def postgres_check(dsn: str, timeout_s: float) -> Check:
    """PostgreSQL is ready when it answers `select 1`."""

    async def select_one() -> None:
        conn = await asyncpg.connect(dsn, timeout=timeout_s)
        try:
            await conn.fetchval("select 1", timeout=timeout_s)
        finally:
            await conn.close(timeout=timeout_s)

    def check() -> None:
        try:
            asyncio.run(asyncio.wait_for(select_one(), timeout_s))
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            reason = str(exc) or type(exc).__name__
            raise ConnectionError(f"PostgreSQL does not answer: {reason}") from exc

    return check


def failures(checks: dict[str, Check]) -> dict[str, str]:
    """Each failing check's reason, by name; empty when all are ready."""
    failed = {}
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:
            failed[name] = str(exc)
    return failed
