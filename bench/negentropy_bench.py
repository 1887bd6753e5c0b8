"""Re-sync of an already archived relay: NIP-77 reconciliation against paging, same content.

Loads LocalRelay (rust-nostr, in-memory, at most 500 events per REQ) with signed events, a few
hundred of them in one second from one author, and stores all of them in a fresh database as the
sink would after a first sync (`events` and `sightings` rows). Then, in each round, it re-syncs
the whole range twice with the real synchronizer into the real Kafka: by paging (the method the
archive has without NIP-77: the measure to beat), and by negentropy against the archive's ids.
The relay is reached through a TCP forwarder that counts the bytes each way. Per round it prints
events fetched, bytes transferred and time for both, then the best round's ratios (negentropy /
paging). A few events added to the relay before the last round show what a re-sync moves then.
Run from the checkout: `.venv/bin/python -m bench.negentropy_bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bigbrotr.codec import Codec
from bigbrotr.config import Settings, load_settings
from bigbrotr.migrate import migrate
from bigbrotr.nostr import Event, normalize_relay_url
from bigbrotr.producer import new_producer
from bigbrotr.topics import create_topics
from connectors.known_ids import DatabaseKnownIds
from connectors.negentropy_pull import NegentropyPuller, negentropy_limits
from connectors.synchronizer import SyncReport, sync_relay
from tests.support.events import BASE_TIME, make_events
from tests.support.loader import load_events
from tests.support.relays import RunningRelay, local_relay
from tests.support.tcp_proxy import CuttableProxy

SINCE, UNTIL = BASE_TIME, BASE_TIME + 86_400
CROWD = 300
LOAD_CHUNK = 5000  # LocalRelay drops a connection that publishes many more events than this


@dataclass(frozen=True)
class Run:
    method: str
    fetched: int
    requests: int
    bytes_up: int
    bytes_down: int
    seconds: float

    @property
    def bytes(self) -> int:
        return self.bytes_up + self.bytes_down

    def line(self) -> str:
        return (
            f"{self.method:>10}: {self.fetched:>6} events fetched in {self.requests:>4} REQs, "
            f"{self.bytes / 1e6:8.3f} MB ({self.bytes_up / 1e3:,.1f} kB up), {self.seconds:6.2f}s"
        )


async def resync(
    url: str,
    proxy: CuttableProxy,
    settings: Settings,
    negentropy: NegentropyPuller | None,
) -> Run:
    producer = new_producer(settings)
    await producer.start()
    up, down = proxy.bytes_to_target, proxy.bytes_from_target
    try:
        started = time.perf_counter()
        report: SyncReport = await sync_relay(
            url,
            since=SINCE,
            until=UNTIL,
            producer=producer,
            codec=Codec(),
            settings=settings,
            allow=[proxy.host_port],
            negentropy=negentropy,
        )
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    if report.cursor.gaps:
        print(f"  note: {len(report.cursor.gaps)} gap(s): {report.cursor.gaps[0].reason[:120]}")
    if report.negentropy is not None and report.negentropy.fallbacks:
        raise SystemExit(f"negentropy fell back to paging: {report.negentropy.fallbacks}")
    return Run(
        "paging" if negentropy is None else "negentropy",
        report.published,
        report.requests,
        proxy.bytes_to_target - up,
        proxy.bytes_from_target - down,
        elapsed,
    )


async def archive(dsn: str, relay_url: str, events: list[Event]) -> None:
    """What the sink stores after a first sync: every event, and its sighting on the relay."""
    seen = datetime.now(UTC)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.executemany(
            "INSERT INTO events (id, pubkey, created_at, kind, tags, content, sig, "
            "first_seen_at, first_seen_relay) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9)",
            [
                (
                    bytes.fromhex(e.id),
                    bytes.fromhex(e.pubkey),
                    e.created_at,
                    e.kind,
                    json.dumps(e.tags),
                    e.content,
                    bytes.fromhex(e.sig),
                    seen,
                    relay_url,
                )
                for e in events
            ],
        )
        await conn.executemany(
            "INSERT INTO sightings (event_id, relay_url, first_seen_at, last_seen_at) "
            "VALUES ($1, $2, $3, $3)",
            [(bytes.fromhex(e.id), relay_url, seen) for e in events],
        )
    finally:
        await conn.close()


async def fresh_database(server_url: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


async def drop_database(server_url: str, dsn: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        name = urlsplit(dsn).path.strip("/")
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def load(relay: RunningRelay, events: list[Event]) -> None:
    for start in range(0, len(events), LOAD_CHUNK):
        await load_events(relay.url, events[start : start + LOAD_CHUNK])


async def main(count: int, rounds: int, added: int) -> None:
    base = load_settings()
    label = uuid.uuid4().hex
    print(f"signing {count} + {CROWD} events ...", flush=True)
    events = make_events(count, label=f"bench {label}")
    events += make_events(CROWD, since=BASE_TIME + 777, same_second=True, label=label, author=0)
    dsn = await fresh_database(base.database.dsn())
    settings = load_settings(
        kafka={"topic_prefix": f"bench.{uuid.uuid4().hex[:12]}."}, database={"url": dsn}
    )
    known = DatabaseKnownIds(dsn)
    try:
        with tempfile.TemporaryDirectory() as workdir, local_relay(Path(workdir)) as relay:
            await load(relay, events)
            port = urlsplit(relay.url).port
            assert port is not None
            async with CuttableProxy(port) as proxy:
                url = normalize_relay_url(f"ws://{proxy.host_port}")
                await migrate(dsn)
                await archive(dsn, url, events)
                create_topics(settings.kafka)
                print(
                    f"LocalRelay holds {len(events)} events, all archived; Kafka at "
                    f"{settings.kafka.bootstrap_servers}, database {urlsplit(dsn).path}"
                )
                puller = NegentropyPuller(known, negentropy_limits(settings.sync))
                best: dict[str, Run] = {}
                for number in range(1, rounds + 1):
                    if number == rounds and added:
                        await load(relay, make_events(added, label=f"bench added {label}"))
                        print(f"round {number}: {added} new events added to the relay first")
                    else:
                        print(f"round {number}:")
                    for negentropy in (None, puller):
                        run = await resync(url, proxy, settings, negentropy)
                        print(f"  {run.line()}")
                        measured = number < rounds or not added
                        if measured and (
                            run.method not in best or run.seconds < best[run.method].seconds
                        ):
                            best[run.method] = run
    finally:
        await known.aclose()
        await drop_database(base.database.dsn(), dsn)
    paging, neg = best["paging"], best["negentropy"]
    print(
        f"best re-sync of the archived relay: negentropy / paging = "
        f"events {neg.fetched}/{paging.fetched}, "
        f"bytes {neg.bytes / paging.bytes:.4f}, time {neg.seconds / paging.seconds:.3f}"
    )


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000, help="spread events in the relay")
    parser.add_argument("--rounds", type=int, default=3, help="paging + negentropy re-syncs")
    parser.add_argument(
        "--added", type=int, default=100, help="events added before the last round (0: none)"
    )
    args = parser.parse_args()
    if args.rounds < 2 and args.added:
        parser.error("--added needs at least 2 rounds: the last one is measured apart")
    asyncio.run(main(args.events, args.rounds, args.added))


if __name__ == "__main__":
    cli()
