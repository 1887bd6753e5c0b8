"""What the demo loads into its two relays, and what the archive must make of it.

`events` distinct valid events: a tenth of them only on nostr-relay, a tenth only on LocalRelay,
the rest on both. nostr-relay (which the demo runs without its signature check) also serves
three events with a bad signature and three whose id is not their hash; two signed events on it
are over the demo's content limit. Every created_at lies between two days and one hour ago, so
the sync's history pull finds them and its live subscription does not fetch them again.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from dataclasses import dataclass

from bigbrotr.nostr import Event, sign_event

MAX_CONTENT_BYTES = 2048  # the demo worker's streams.max_content_bytes
BAD_SIG, BAD_ID, TOO_LARGE = 3, 3, 2
_KEYS = tuple(hashlib.sha256(f"bigbrotr demo key {n}".encode()).hexdigest() for n in range(5))
_TOPICS = ("nostr", "bitcoin", "bigbrotr", "zaps")
_OLDEST_S, _NEWEST_S = 2 * 86_400, 3_600


@dataclass(frozen=True)
class DemoLoad:
    """Events per relay, and the archive they must give."""

    both: tuple[Event, ...]
    only_nostr_relay: tuple[Event, ...]
    only_local_relay: tuple[Event, ...]
    invalid: tuple[tuple[str, Event], ...]  # (reject reason, event), on nostr-relay only

    @property
    def nostr_relay_events(self) -> list[Event]:
        return [*self.both, *self.only_nostr_relay, *(event for _, event in self.invalid)]

    @property
    def local_relay_events(self) -> list[Event]:
        return [*self.both, *self.only_local_relay]

    @property
    def valid_events(self) -> int:
        return len(self.both) + len(self.only_nostr_relay) + len(self.only_local_relay)

    @property
    def sightings(self) -> int:
        """Valid (event, relay) pairs."""
        return 2 * len(self.both) + len(self.only_nostr_relay) + len(self.only_local_relay)

    @property
    def rejects(self) -> Counter[str]:
        return Counter(reason for reason, _ in self.invalid)


def build_load(events: int, now: int) -> DemoLoad:
    """The demo's events, signed now, with created_at spread over the window before `now`."""
    if events < 10:
        raise ValueError("the demo needs at least 10 events")
    oldest, newest = now - _OLDEST_S, now - _NEWEST_S
    valid: list[Event] = []
    for n in range(events):
        created_at = _spread(n, events, oldest, newest)
        reacts = n % 5 == 4
        valid.append(_reaction(n, created_at, valid[-1]) if reacts else _note(n, created_at))
    unique = events // 10
    extra = [_note(events + n, newest, label="refused") for n in range(BAD_SIG + BAD_ID)]
    invalid = [("bad_sig", dataclasses.replace(e, sig=extra[-1].sig)) for e in extra[:BAD_SIG]]
    invalid += [
        ("bad_id", dataclasses.replace(e, content=e.content + " (edited)")) for e in extra[BAD_SIG:]
    ]
    invalid += [
        ("too_large", sign_event(_KEYS[0], newest, 1, [], f"{n} " + "x" * MAX_CONTENT_BYTES))
        for n in range(TOO_LARGE)
    ]
    return DemoLoad(
        both=tuple(valid[2 * unique :]),
        only_nostr_relay=tuple(valid[:unique]),
        only_local_relay=tuple(valid[unique : 2 * unique]),
        invalid=tuple(invalid),
    )


def _spread(index: int, count: int, oldest: int, newest: int) -> int:
    return oldest + (newest - oldest) * index // max(count - 1, 1)


def _note(index: int, created_at: int, label: str = "note") -> Event:
    topic = _TOPICS[index % len(_TOPICS)]
    key = _KEYS[index % len(_KEYS)]
    return sign_event(key, created_at, 1, [["t", topic]], f"demo {label} {index} about #{topic}")


def _reaction(index: int, created_at: int, target: Event) -> Event:
    tags = [["e", target.id], ["p", target.pubkey]]
    return sign_event(_KEYS[index % len(_KEYS)], created_at, 7, tags, "+")
