"""`bigbrotr api` as a real process over a real archive, and archives filled as the sink fills
them (with the sink's own writers), for the API and relay tests."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from bigbrotr.devstack.process import free_port
from bigbrotr.migrate import migrate
from bigbrotr.nostr import Event
from connectors.sink.events import EventsWriter, event_row
from connectors.sink.probes import ProbesWriter, probe_rows
from connectors.sink.relays import RelayRow, RelaysWriter
from connectors.sink.sightings import SightingsWriter, sighting_row
from tests.support.cli import BIGBROTR
from tests.support.sink_load import codec, event_record

_START_TIMEOUT_S = 30.0


@asynccontextmanager
async def scratch_database(postgres_url: str) -> AsyncIterator[str]:
    """A fresh migrated database for a whole test module (the `database_url` fixture is per
    test); dropped afterwards."""
    name = f"test_api_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = urlunsplit(urlsplit(postgres_url)._replace(path=f"/{name}"))
    try:
        await migrate(url)
        yield url
    finally:
        admin = await asyncpg.connect(postgres_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def store(
    dsn: str,
    events: Sequence[tuple[Event, str, datetime]] = (),
    relays: Sequence[dict[str, Any]] = (),
    probes: Sequence[dict[str, Any]] = (),
) -> None:
    """Write (event, relay, seen_at) triples, RelayDiscovered and RelayProbe records as the sink
    does: through its writers, in one transaction."""
    writers = (EventsWriter(codec), SightingsWriter(codec), RelaysWriter(codec))
    probe_writer = ProbesWriter(codec)
    conn = await asyncpg.connect(dsn)
    try:
        for writer in (*writers, probe_writer):
            await writer.setup(conn)
        async with conn.transaction():
            await writers[0].write(
                conn, [event_row(event_record(e, relay, at)) for e, relay, at in events]
            )
            sightings = [
                sighting_row({"event_id": e.id, "relay_url": r, "seen_at": at, "source": "sync"})
                for e, r, at in events
            ]
            await writers[1].write(conn, sightings)
            rows = [
                RelayRow(r["url"], (r["url"], r["network"], r["source"], r["discovered_at"]))
                for r in relays
            ]
            await writers[2].write(conn, rows)
            await probe_writer.write(conn, [probe_rows(record) for record in probes])
    finally:
        await conn.close()


def api_env(database_url: str, port: int, **api: str) -> dict[str, str]:
    """Only these settings configure the process: the archive, the port and `api.*` keys."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BIGBROTR_")}
    env = {
        **clean,
        "BIGBROTR_DATABASE__URL": database_url,
        "BIGBROTR_API__PORT": str(port),
        "BIGBROTR_LOG_LEVEL": "WARNING",
    }
    env.update({f"BIGBROTR_API__{key.upper()}": value for key, value in api.items()})
    return env


@contextmanager
def api_process(database_url: str, logs: Path, **api: str) -> Iterator[str]:
    """`bigbrotr api` serving `database_url`; yields its base URL once it answers, and checks
    it stops cleanly on SIGTERM."""
    port = free_port()
    log_path = logs / f"api-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*BIGBROTR, "api"],
            env=api_env(database_url, port, **api),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_answering(base, process, log_path)
        yield base
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(10)
            except subprocess.TimeoutExpired as exc:
                process.kill()
                process.wait()
                raise AssertionError(f"bigbrotr api ignored SIGTERM: {_tail(log_path)}") from exc
            assert code == 0, f"bigbrotr api exited with {code} on SIGTERM: {_tail(log_path)}"


def _wait_answering(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"bigbrotr api exited with {process.returncode}: {_tail(log)}")
        try:
            if httpx.get(base + "/", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"bigbrotr api did not answer within {_START_TIMEOUT_S}s: {_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] or "(empty log)"
