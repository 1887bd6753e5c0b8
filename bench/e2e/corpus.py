"""The signed events the end-to-end runs load into their relays, cached on disk by size.

Signing costs about 150 us an event in Python (a million: minutes), so a corpus is built once per
size, with the keys parsed once and the work spread over the machine's cores, and kept as one
event JSON text a line under `<dev.state_dir>/bench/`. Every `created_at` is fixed (the 30 days
before 2025-01-01), so a cached corpus stays the same whenever it is read.

Valid events are kind 1 notes with a `t` tag and, every fifth, a kind 7 reaction to the note
before it, from 50 keys. Each slice of 60,000 is shared by two relays: the first holds all but
its last tenth, the second all but its first tenth, so 80% of the events are seen twice. A few
invalid ones (a bad signature, an id that is not the hash) go to a relay of their own that does
not check signatures.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import coincurve

from bigbrotr.nostr import (
    Event,
    Tags,
    event_to_json,
    parse_event,
    serialize_for_id,
    sign_event,
    verify,
)

VERSION = 1
BASE_TIME = 1_735_689_600  # 2025-01-01T00:00:00Z
SPAN_S = 30 * 86_400
KEYS = 50
BAD_SIG, BAD_ID = 5, 5
_TOPICS = ("nostr", "bitcoin", "bigbrotr", "zaps", "music", "photography")
_CHUNK = 20_000  # a multiple of 5
# LocalRelay's in-memory store keeps only the newest ~75,000 events (older ones are dropped while
# it still answers OK), so no relay gets more than 90% of a slice.
SLICE = 60_000


@dataclass(frozen=True)
class Corpus:
    """`texts[i]` is event i's JSON, `invalid` (reason, JSON) live on a relay of their own.

    The texts are cut into slices of at most `SLICE` events, each served by a pair of relays:
    the first holds all of the slice but its last tenth, the second all but its first tenth.
    """

    texts: list[str]
    invalid: list[tuple[str, str]]

    @property
    def relay_texts(self) -> list[list[str]]:
        """The texts of each LocalRelay, two per slice."""
        held = []
        for start in range(0, len(self.texts), SLICE):
            piece = self.texts[start : start + SLICE]
            tenth = len(piece) // 10
            held += [piece[: len(piece) - tenth], piece[tenth:]]
        return held

    @property
    def sightings(self) -> int:
        """Valid (event, relay) pairs the archive must end with."""
        return sum(len(texts) for texts in self.relay_texts)


@cache
def _keys() -> tuple[tuple[coincurve.PrivateKey, str], ...]:
    secrets = [hashlib.sha256(f"bigbrotr e2e key {n}".encode()).digest() for n in range(KEYS)]
    return tuple(
        (coincurve.PrivateKey(s), coincurve.PublicKeyXOnly.from_secret(s).format().hex())
        for s in secrets
    )


def _signed(index: int, count: int, previous: tuple[str, str]) -> tuple[str, str, str]:
    """Event `index` as JSON text, with its (id, pubkey) for the reaction that may follow."""
    key, pubkey = _keys()[index % KEYS]
    created_at = BASE_TIME - SPAN_S + SPAN_S * index // max(count - 1, 1)
    tags: Tags
    if index % 5 == 4:
        kind, tags = 7, (("e", previous[0]), ("p", previous[1]))
        content = "+"
    else:
        topic = _TOPICS[index % len(_TOPICS)]
        kind, tags = 1, (("t", topic),)
        content = f"e2e note {index} about #{topic}: " + "lorem ipsum " * (index % 17)
    digest = hashlib.sha256(serialize_for_id(pubkey, created_at, kind, tags, content)).digest()
    event = Event(
        digest.hex(), pubkey, created_at, kind, tags, content, key.sign_schnorr(digest).hex()
    )
    return event_to_json(event), event.id, pubkey


def _sign_range(bounds: tuple[int, int, int]) -> list[str]:
    start, stop, count = bounds
    # Chunks start at a multiple of 5: a note, so every reaction's note is in its own chunk.
    previous = ("", "")
    texts = []
    for index in range(start, stop):
        text, *last = _signed(index, count, previous)
        previous = (last[0], last[1])
        texts.append(text)
    return texts


def _invalid() -> list[tuple[str, str]]:
    secret = hashlib.sha256(b"bigbrotr e2e invalid").hexdigest()
    total = BAD_SIG + BAD_ID + 1
    made = [sign_event(secret, BASE_TIME - 60, 1, [], f"e2e refused {n}") for n in range(total)]
    bad_sig = [("bad_sig", dataclasses.replace(e, sig=made[-1].sig)) for e in made[:BAD_SIG]]
    bad_id = [
        ("bad_id", dataclasses.replace(e, content=e.content + " (edited)"))
        for e in made[BAD_SIG : BAD_SIG + BAD_ID]
    ]
    return [(reason, event_to_json(event)) for reason, event in bad_sig + bad_id]


def build(count: int) -> list[str]:
    """`count` signed event texts, signed by as many processes as there are cores."""
    bounds = [(start, min(start + _CHUNK, count), count) for start in range(0, count, _CHUNK)]
    if len(bounds) == 1:
        return _sign_range(bounds[0])
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return [text for chunk in pool.map(_sign_range, bounds) for text in chunk]


def load_corpus(count: int, cache_dir: Path) -> Corpus:
    """The corpus of `count` events, from the cache or built (and cached) now."""
    path = cache_dir / f"corpus-v{VERSION}-{count}.jsonl"
    if path.exists():
        texts = path.read_text().splitlines()
        print(f"events: {count:,} signed events from {path}", flush=True)
    else:
        started = time.perf_counter()
        texts = build(count)
        spent = time.perf_counter() - started
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text("".join(f"{text}\n" for text in texts))
        partial.rename(path)
        print(
            f"events: signed {count:,} events in {spent:.1f} s ({count / spent:,.0f}/s on "
            f"{os.cpu_count()} cores), cached in {path}",
            flush=True,
        )
    for text in (texts[0], texts[-1]):
        verify(parse_event(text))
    if len({json.loads(text)["id"] for text in texts[:1000]}) != min(count, 1000):
        raise SystemExit(f"{path}: the corpus repeats ids; delete it to build it again")
    return Corpus(texts, _invalid())


def live_event(index: int, label: str) -> str:
    """A note signed now, for relays that receive events while the pipeline runs."""
    key, pubkey = _keys()[index % KEYS]
    tags: Tags = (("t", "live"),)
    content = f"{label} live note {index}"
    created_at = int(time.time())
    digest = hashlib.sha256(serialize_for_id(pubkey, created_at, 1, tags, content)).digest()
    signature = key.sign_schnorr(digest).hex()
    return event_to_json(Event(digest.hex(), pubkey, created_at, 1, tags, content, signature))
