"""Events per second from one local relay into `events.raw`, against a bare websocket reader.

Loads LocalRelay (rust-nostr) with signed events, pulls them with the real synchronizer into the
real Kafka, recording every REQ it sends, then replays exactly those REQs with a reader that only
counts frames: the ceiling any client could reach on this relay and socket. Each round runs both;
the best round of each is compared. Run from the checkout: `.venv/bin/python -m bench.sync_bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import websockets

from bigbrotr.codec import Codec
from bigbrotr.config import Settings, load_settings
from bigbrotr.nostr import Filter
from bigbrotr.producer import new_producer
from bigbrotr.topics import create_topics
from connectors.client import RelayClient, Subscription
from connectors.synchronizer import sync_relay
from tests.support.events import BASE_TIME, make_events
from tests.support.loader import load_events
from tests.support.relays import RunningRelay, local_relay

SINCE, UNTIL = BASE_TIME, BASE_TIME + 86_400
TARGET = 0.6
LOAD_CHUNK = 5000  # LocalRelay drops a connection that publishes many more events than this
SETTLE_S = 1.0


@dataclass(frozen=True)
class Rate:
    events: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.events / self.seconds


@contextmanager
def recorded_requests() -> Iterator[list[Sequence[Filter]]]:
    """Every REQ any `RelayClient` subscribes while the block runs, in order."""
    asked: list[Sequence[Filter]] = []
    subscribe = RelayClient.subscribe

    def recording(
        client: RelayClient,
        filters: Sequence[Filter],
        *,
        live: bool = False,
        subscription_id: str | None = None,
    ) -> Subscription:
        asked.append(filters)
        return subscribe(client, filters, live=live, subscription_id=subscription_id)

    RelayClient.subscribe = recording  # type: ignore[method-assign,assignment]
    try:
        yield asked
    finally:
        RelayClient.subscribe = subscribe  # type: ignore[method-assign]


async def synchronizer_run(
    relay: RunningRelay, settings: Settings, profile: cProfile.Profile | None
) -> tuple[Rate, list[Sequence[Filter]]]:
    producer = new_producer(settings)
    await producer.start()
    try:
        with recorded_requests() as asked:
            if profile is not None:
                profile.enable()
            started = time.perf_counter()
            report = await sync_relay(
                relay.url,
                since=SINCE,
                until=UNTIL,
                producer=producer,
                codec=Codec(),
                settings=settings,
                allow=[relay.host_port],
            )
            elapsed = time.perf_counter() - started
            if profile is not None:
                profile.disable()
    finally:
        await producer.stop()
    if report.gaps:
        raise SystemExit(f"the synchronizer left gaps, the figures mean nothing: {report.gaps}")
    return Rate(report.published, elapsed), asked


async def bare_run(url: str, requests: Sequence[Sequence[Filter]]) -> Rate:
    """Send the same REQs one after another on one socket and count EVENT frames, unparsed."""
    events = 0
    async with websockets.connect(url, max_size=None) as ws:
        # As on the synchronizer's sockets (connectors/client/dial.py): without it each REQ
        # after a CLOSE waits for the relay's delayed ACK, and the ceiling would be too low.
        ws.transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = time.perf_counter()
        for number, filters in enumerate(requests):
            sub = f"bench{number}"
            await ws.send(json.dumps(["REQ", sub, *(flt.to_dict() for flt in filters)]))
            while True:
                frame = await ws.recv(decode=True)
                assert isinstance(frame, str)
                if frame.startswith('["EVENT"'):
                    events += 1
                elif frame.startswith('["EOSE"'):
                    break
            await ws.send(json.dumps(["CLOSE", sub]))
        elapsed = time.perf_counter() - started
    return Rate(events, elapsed)


async def main(count: int, rounds: int, profile_path: Path | None) -> float:
    base = load_settings()
    print(f"signing {count} events ...", flush=True)
    events = make_events(count, label=f"bench {uuid.uuid4().hex}")
    with tempfile.TemporaryDirectory() as workdir, local_relay(Path(workdir)) as relay:
        held: set[str] = set()
        for start in range(0, count, LOAD_CHUNK):
            held |= await load_events(relay.url, events[start : start + LOAD_CHUNK])
        kafka = base.kafka.bootstrap_servers
        print(f"LocalRelay at {relay.url} holds {len(held)} events; Kafka at {kafka}")
        settings = load_settings(kafka={"topic_prefix": f"bench.{uuid.uuid4().hex[:12]}."})
        create_topics(settings.kafka)
        # Warm-up (partition leaders, caches); it also records the REQs the ceiling replays.
        _, asked = await synchronizer_run(relay, settings, None)
        profile = cProfile.Profile() if profile_path is not None else None
        syncs: list[Rate] = []
        bares: list[Rate] = []
        for number in range(1, rounds + 1):
            # The broker is still writing what the last pull sent; the ceiling must not pay it.
            await asyncio.sleep(SETTLE_S)
            before = await bare_run(relay.url, asked)
            sync, again = await synchronizer_run(relay, settings, profile)
            if [list(filters) for filters in again] != [list(filters) for filters in asked]:
                raise SystemExit("the synchronizer sent other REQs than the ceiling replayed")
            await asyncio.sleep(SETTLE_S)
            after = await bare_run(relay.url, asked)
            # The machine's load moves within a round too: the round's ceiling is the faster.
            bare = max(before, after, key=lambda rate: rate.per_second)
            syncs.append(sync)
            bares.append(bare)
            print(
                f"round {number}: bare reader {bare.per_second:,.0f} ev/s "
                f"({bare.events} in {bare.seconds:.2f}s); synchronizer {sync.per_second:,.0f} "
                f"ev/s ({sync.events} in {sync.seconds:.2f}s, {len(asked)} REQs); "
                f"ratio {sync.per_second / bare.per_second:.2f}",
                flush=True,
            )
    best_sync = max(syncs, key=lambda rate: rate.per_second)
    best_bare = max(bares, key=lambda rate: rate.per_second)
    ratio = best_sync.per_second / best_bare.per_second
    worst = min(sync.per_second / bare.per_second for sync, bare in zip(syncs, bares, strict=True))
    print(
        f"best: synchronizer {best_sync.per_second:,.0f} ev/s, bare reader "
        f"{best_bare.per_second:,.0f} ev/s, ratio {ratio:.2f}; worst round {worst:.2f} "
        f"(target >= {TARGET})"
    )
    if profile is not None and profile_path is not None:
        profile.dump_stats(profile_path)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
    return ratio


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000, help="events loaded into the relay")
    parser.add_argument("--rounds", type=int, default=3, help="synchronizer + bare runs")
    parser.add_argument(
        "--profile", type=Path, help="write a cProfile of the synchronizer runs to this file"
    )
    args = parser.parse_args()
    asyncio.run(main(args.events, args.rounds, args.profile))


if __name__ == "__main__":
    cli()
