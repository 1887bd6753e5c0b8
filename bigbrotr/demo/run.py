"""`bigbrotr demo`: two real relays, filled, archived end to end by the real pipeline, then a
summary.

The demo's pipeline is `bigbrotr run` on settings of its own (a fresh topic prefix under
`<kafka.topic_prefix>demo.`, a fresh database, the relays on the allow-list and in the finder's
seed file), handed to the children as environment variables, the strongest settings source. The
topics of older demos are deleted at start; the database of the last one stays for queries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from confluent_kafka import KafkaException
from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bigbrotr.config import ENV_NESTED_DELIMITER, ENV_PREFIX, Settings
from bigbrotr.demo.archive import RejectTally, Stored, sink_lag, stored, worker_lag
from bigbrotr.demo.data import MAX_CONTENT_BYTES, DemoLoad, build_load
from bigbrotr.demo.loader import load_events
from bigbrotr.demo.relays import RunningRelay, local_relay, nostr_relay
from bigbrotr.errors import DemoError, RelayLoadError
from bigbrotr.migrate import migrate
from bigbrotr.supervisor import main_job
from bigbrotr.topics import create_topics, kafka_unreachable, new_admin

_DEMO_PARTITIONS = 2  # a demo's few hundred records need no more, and start faster
_POLL_S = 0.5


@dataclass(frozen=True)
class DemoOutcome:
    """What was loaded and what the archive holds; `complete` when they agree."""

    relays: dict[str, int]  # relay URL -> events loaded into it
    load: DemoLoad
    stored: Stored
    relay_rows: list[dict[str, Any]]
    rejects: Counter[str]  # distinct rejected records by reason
    dead_letters: int  # every record on `rejects`, repeats included
    lag: dict[str, dict[str, int]]
    queries: list[tuple[str, str, list[dict[str, Any]]]]
    database_url: str
    topic_prefix: str
    log: Path
    seconds: float

    @property
    def complete(self) -> bool:
        return (
            self.stored.events == self.load.valid_events
            and self.stored.sightings == self.load.sightings
            and self.rejects == self.load.rejects
            and self.stored.relays == len(self.relays)
        )


def overrides(
    settings: Settings, prefix: str, database_url: str, workdir: Path, relays: list[RunningRelay]
) -> dict[str, dict[str, Any]]:
    """The demo's settings, by section; the same values go to this process and its children."""
    seed = workdir / "seed_relays.txt"
    seed.write_text("".join(f"{relay.url}\n" for relay in relays))
    topics = {
        name: topic.model_copy(update={"partitions": _DEMO_PARTITIONS})
        for name, topic in settings.kafka.topics.items()
    }
    return {
        "kafka": {"topic_prefix": prefix, "topics": topics},
        "database": {"url": database_url},
        "connectors": {"allow": [relay.host_port for relay in relays]},
        "finder": {"seed_path": seed, "http_sources": []},
        "streams": {"data_dir": workdir / "streams", "max_content_bytes": MAX_CONTENT_BYTES},
    }


def applied(settings: Settings, changes: Mapping[str, Mapping[str, Any]]) -> Settings:
    update = {
        section: getattr(settings, section).model_copy(update=dict(values))
        for section, values in changes.items()
    }
    return settings.model_copy(update=update)


def as_environment(changes: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """`BIGBROTR_<SECTION>__<KEY>` variables; lists and mappings as JSON, as the settings read."""
    env = {}
    for section, values in changes.items():
        for key, value in values.items():
            name = f"{ENV_PREFIX}{section}{ENV_NESTED_DELIMITER}{key}".upper()
            plain = _plain(value)
            env[name] = plain if isinstance(plain, str) else json.dumps(plain)
    return env


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


async def run_demo(
    settings: Settings,
    *,
    config: str | None,
    events: int,
    database: str,
    timeout_s: float,
    console: Console,
) -> DemoOutcome:
    started = time.monotonic()
    run_id = uuid.uuid4().hex[:8]
    demo_root = f"{settings.kafka.topic_prefix}demo."
    prefix = f"{demo_root}{run_id}."
    workdir = settings.dev.state_dir / "demo"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    removed = await asyncio.to_thread(_delete_topics, settings, demo_root)
    if removed:
        console.print(f"deleted {removed} topic(s) of earlier demos")
    database_url = await _fresh_database(settings.database.dsn(), database)
    load = build_load(events, int(time.time()))
    with _relays(workdir) as relays:
        loaded = await _load(relays, load)
        console.print(
            "relays: " + ", ".join(f"{url} ({count} events)" for url, count in loaded.items())
        )
        changes = overrides(settings, prefix, database_url, workdir, list(relays))
        demo = applied(settings, changes)
        await migrate(demo.database.dsn())
        await asyncio.to_thread(create_topics, demo.kafka)
        log = workdir / "pipeline.log"
        console.print(
            f"pipeline: {', '.join(demo.run.components)} (their logs: {log})", soft_wrap=True
        )
        with log.open("w") as output, _supervisor_log(output):
            supervisor = main_job(demo, config, as_environment(changes), output=output)
            running = asyncio.create_task(supervisor.run())
            try:
                async with RejectTally(demo) as tally:
                    archived = await _watch(demo, load, len(relays), tally, timeout_s, console)
                    rejects, letters = tally.reasons, tally.letters
            finally:
                supervisor.stop()
                await running
    conn = await asyncpg.connect(demo.database.dsn())
    try:
        lag = {
            "worker (events.raw)": await asyncio.to_thread(worker_lag, demo),
            "sink": await sink_lag(demo, conn),
        }
        relay_rows = [dict(row) for row in await conn.fetch(_RELAYS_SQL)]
        queries = [(title, sql, [dict(r) for r in await conn.fetch(sql)]) for title, sql in QUERIES]
    finally:
        await conn.close()
    return DemoOutcome(
        relays=loaded,
        load=load,
        stored=archived,
        relay_rows=relay_rows,
        rejects=rejects,
        dead_letters=letters,
        lag=lag,
        queries=queries,
        database_url=database_url,
        topic_prefix=prefix,
        log=log,
        seconds=time.monotonic() - started,
    )


@contextlib.contextmanager
def _supervisor_log(output: TextIO) -> Iterator[None]:
    """The supervisor's own lines go with its children's, not over the progress bars."""
    logger = logging.getLogger("bigbrotr.run")
    handler = logging.StreamHandler(output)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


@contextlib.contextmanager
def _relays(workdir: Path) -> Iterator[tuple[RunningRelay, RunningRelay]]:
    with (
        nostr_relay(
            workdir / "nostr-relay", check_signatures=False, name="bigbrotr demo relay"
        ) as first,
        local_relay(workdir / "local-relay") as second,
    ):
        yield first, second


async def _load(relays: tuple[RunningRelay, RunningRelay], load: DemoLoad) -> dict[str, int]:
    loaded = {}
    for relay, batch in zip(
        relays, (load.nostr_relay_events, load.local_relay_events), strict=True
    ):
        accepted = await load_events(relay.url, batch)
        if len(accepted) != len(batch):
            raise RelayLoadError(f"{relay.url} took {len(accepted)} of {len(batch)} events")
        loaded[relay.url] = len(batch)
    return loaded


async def _watch(
    settings: Settings,
    load: DemoLoad,
    relays: int,
    tally: RejectTally,
    timeout_s: float,
    console: Console,
) -> Stored:
    """Live progress until the archive holds everything loaded, or `timeout_s` passed."""
    columns = (
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    conn = await asyncpg.connect(settings.database.dsn())
    try:
        with Progress(*columns, console=console) as progress:
            bars = {
                "relays": progress.add_task("relays found", total=relays),
                "events": progress.add_task("events stored", total=load.valid_events),
                "sightings": progress.add_task("sightings stored", total=load.sightings),
                "rejects": progress.add_task("rejected (distinct)", total=load.rejects.total()),
            }
            deadline = time.monotonic() + timeout_s
            while True:
                now = await stored(conn)
                rejects = tally.reasons.total()
                for name, done in (
                    ("relays", now.relays),
                    ("events", now.events),
                    ("sightings", now.sightings),
                    ("rejects", rejects),
                ):
                    progress.update(bars[name], completed=done)
                complete = (
                    now.relays >= relays
                    and now.events >= load.valid_events
                    and now.sightings >= load.sightings
                    and rejects >= load.rejects.total()
                )
                if complete or time.monotonic() > deadline:
                    return now
                await asyncio.sleep(_POLL_S)
    finally:
        await conn.close()


async def _fresh_database(dsn: str, name: str) -> str:
    if not name.isidentifier() or len(name) > 63:
        raise DemoError(f"--database {name!r}: use letters, digits and _ (at most 63)")
    server = urlunsplit(urlsplit(dsn)._replace(path="/postgres"))
    try:
        conn = await asyncpg.connect(server, timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise DemoError(
            f"cannot reach PostgreSQL at {urlsplit(dsn).hostname}:{urlsplit(dsn).port} ({exc}); "
            "start it with `bigbrotr dev up` or check database.url"
        ) from exc
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


def _delete_topics(settings: Settings, demo_root: str) -> int:
    """Topics of earlier demos (every name under `demo_root`), so they do not pile up."""
    admin = new_admin(settings.kafka.bootstrap_servers)
    try:
        names = [n for n in admin.list_topics(timeout=10).topics if n.startswith(demo_root)]
    except KafkaException as exc:
        raise kafka_unreachable(settings.kafka.bootstrap_servers, exc) from exc
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            future.result(30)
    return len(names)


_RELAYS_SQL = """
SELECT r.url, count(s.event_id) AS events,
       (SELECT p.open_rtt_ms FROM relay_probes p WHERE p.relay_url = r.url
        ORDER BY p.probed_at DESC LIMIT 1) AS open_rtt_ms
FROM relays r LEFT JOIN sightings s ON s.relay_url = r.url
GROUP BY r.url ORDER BY r.url
""".strip()

QUERIES: list[tuple[str, str]] = [
    (
        "events per kind",
        "SELECT kind, count(*) AS events FROM events GROUP BY kind ORDER BY kind",
    ),
    (
        "events seen on both relays",
        "SELECT count(*) AS events FROM (SELECT event_id FROM sightings GROUP BY event_id "
        "HAVING count(*) = 2) AS both_relays",
    ),
    (
        "the three busiest authors",
        "SELECT encode(pubkey, 'hex') AS pubkey, count(*) AS events FROM events "
        "GROUP BY pubkey ORDER BY events DESC, pubkey LIMIT 3",
    ),
    (
        "notes tagged #bitcoin",
        "SELECT count(*) AS notes FROM events WHERE kind = 1 AND tagvalues @> ARRAY['t:bitcoin']",
    ),
]
