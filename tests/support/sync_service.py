"""Running `SyncService` in a test: quick settings, a task stopped on exit, and "is it live"."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from bigbrotr.config import Settings, load_settings
from connectors.follower import Phase
from connectors.sync_service import SyncService
from tests.support.events import BASE_TIME


def service_settings(settings: Settings, allow: list[str], **sync: Any) -> Settings:
    quick = {
        "history_since": BASE_TIME,
        "first_chunk_s": 30 * 86_400,
        "chunk_timeout_s": 20,
        "connect_timeout_s": 2,
        "live_session_s": 120,
        "backoff_base_s": 0.2,
        "backoff_max_s": 1.0,
        "breaker_failures": 20,
        "shutdown_timeout_s": 8,
    }
    return load_settings(
        kafka={
            "bootstrap_servers": settings.kafka.bootstrap_servers,
            "topic_prefix": settings.kafka.topic_prefix,
        },
        database={"url": settings.database.url},
        connectors={"allow": allow},
        sync={**quick, **sync},
    )


@contextlib.asynccontextmanager
async def running(service: SyncService) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(service.run())
    try:
        yield task
    finally:
        service.stop()
        async with asyncio.timeout(30):
            await task


def live(service: SyncService, urls: set[str]) -> bool:
    statuses = service.statuses
    return urls <= set(statuses) and all(statuses[url].phase is Phase.LIVE for url in urls)
