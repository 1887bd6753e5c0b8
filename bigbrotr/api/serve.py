"""Run `bigbrotr api`: open the archive read-only, then serve the app with uvicorn until stopped.

The archive is opened before the server starts, so a wrong role or an unmigrated database is one
clear error instead of a server that answers 503. uvicorn stops on SIGINT/SIGTERM, finishing the
requests in hand; `ws_max_size` is what bounds a relay client's frames (larger ones close the
connection with code 1009).
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from bigbrotr.api.app import create_app
from bigbrotr.archive import Archive
from bigbrotr.config import Settings

log = logging.getLogger("bigbrotr.api")


async def serve(settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM."""
    api = settings.api
    archive = Archive(
        api.database(settings.database),
        pool_size=api.pool_size,
        query_timeout_s=api.query_timeout_s,
    )
    await archive.open()
    try:
        config = uvicorn.Config(
            create_app(api, archive),
            host=api.host,
            port=api.port,
            ws_max_size=api.relay_max_message_bytes,
            lifespan="off",
            access_log=False,
            log_level=settings.log_level.lower(),
            proxy_headers=False,
        )
        log.info(
            "serving the archive at %s: HTTP on http://%s:%d, relay on ws://%s:%d",
            archive.where,
            api.host,
            api.port,
            api.host,
            api.port,
        )
        await _Server(config).serve()
    finally:
        await archive.close()


class _Server(uvicorn.Server):
    """uvicorn re-raises the signal that stopped it once it has shut down, so the process dies
    of SIGTERM; for `bigbrotr api` a stop by SIGTERM or Ctrl-C is the normal end (exit 0)."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {signum: signal.signal(signum, self.handle_exit) for signum in handled}
        try:
            yield
        finally:
            for signum, handler in original.items():
                signal.signal(signum, handler)
