"""The run's relays: LocalRelays (rust-nostr, in memory, fast to fill), two per slice of the
corpus, and a nostr-relay that does not check signatures holding the corpus's invalid events
(last); then each one announced on `relays`, as the finder would."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import websockets

from bench.e2e.corpus import Corpus, live_event
from bigbrotr.config import Settings
from bigbrotr.demo.loader import load_events
from bigbrotr.demo.relays import RunningRelay, local_relay, nostr_relay
from bigbrotr.nostr import Event, event_from_object
from tests.support.announce import announce_relays

# LocalRelay drops a connection that sends it several thousand events: at most this many per
# connection, a few connections at once.
_LOAD_CHUNK = 1_000
_CONNECTIONS = 4


@contextlib.contextmanager
def run_relays(workdir: Path, local: int) -> Iterator[list[RunningRelay]]:
    """`local` LocalRelays, then the nostr-relay."""
    with contextlib.ExitStack() as stack:
        relays = [stack.enter_context(local_relay(workdir / f"local-{n}")) for n in range(local)]
        careless = nostr_relay(workdir / "careless", check_signatures=False, name="e2e careless")
        yield [*relays, stack.enter_context(careless)]


def as_events(texts: Sequence[str]) -> list[Event]:
    """The loader publishes `Event`s; invalid ones too (the parser checks shape, not the id)."""
    return [event_from_object(json.loads(text)) for text in texts]


async def fill(relay: RunningRelay, texts: Sequence[str]) -> None:
    starts = iter(range(0, len(texts), _LOAD_CHUNK))

    async def connection() -> None:
        for start in starts:
            chunk = as_events(texts[start : start + _LOAD_CHUNK])
            accepted = await load_events(relay.url, chunk)
            if len(accepted) != len(chunk):
                raise SystemExit(f"{relay.url} took {len(accepted)} of {len(chunk)} events")

    async with asyncio.TaskGroup() as group:
        for _ in range(_CONNECTIONS):
            group.create_task(connection())


async def fill_relays(relays: Sequence[RunningRelay], corpus: Corpus) -> float:
    """Seconds it took to put the corpus on the relays of `run_relays(len(relay_texts))`."""
    started = time.perf_counter()
    for relay, texts in zip(relays, corpus.relay_texts, strict=False):
        await fill(relay, texts)
    await fill(relays[-1], [text for _, text in corpus.invalid])
    return time.perf_counter() - started


async def announce(settings: Settings, relays: Sequence[RunningRelay]) -> None:
    await announce_relays(settings, [relay.url for relay in relays], source="bench")


async def publish_live(
    relays: Sequence[RunningRelay],
    rate: float,
    label: str,
    published: dict[str, float],
    stop: asyncio.Event,
) -> None:
    """New events signed now, `rate` a second on a fixed schedule (a slow answer delays the next
    ones, it does not lower the rate), each to every relay, until `stop` is set; the id goes into
    `published` (with the wall-clock time of the relays' last OK) once every relay said OK. An
    event is never left on some relays only."""
    started = time.monotonic()
    index = 0
    while not stop.is_set():
        sockets = [await websockets.connect(relay.url) for relay in relays]
        try:
            for _ in range(_LOAD_CHUNK):
                delay = started + index / rate - time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(delay, 0.0))
                if stop.is_set():
                    return
                text = live_event(index, label)
                event_id = json.loads(text)["id"]
                for ws in sockets:
                    await ws.send(f'["EVENT",{text}]')
                    answer = json.loads(await ws.recv())
                    if answer[:3] != ["OK", event_id, True]:
                        raise SystemExit(f"a relay refused a live event: {answer}")
                published[event_id] = time.time()
                index += 1
        finally:
            for ws in sockets:
                await ws.close()
