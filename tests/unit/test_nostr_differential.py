"""Differential test: our id computation and BIP-340 checks must agree with rust-nostr (nostr-sdk).

rust-nostr refuses empty tags (`[]`) at parse time while NIP-01 and we accept them, so the generator
only makes non-empty tags; everything else about the event text is fair game.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bigbrotr.nostr import (
    Event,
    InvalidEvent,
    RejectReason,
    compute_id,
    event_to_dict,
    parse_event,
    sign_event,
    verify,
    verify_signature,
)

nostr_sdk = pytest.importorskip("nostr_sdk")

EVENTS = 3000
SEED = 20_240_326
CONTROL = [chr(code) for code in (*range(0x20), 0x7F)]
SPECIAL = ['"', "\\", "/", "\u2028", "\u2029", "\ufeff", "\ufffd", "\uffff", "\u0301", "\u200d"]
EMOJI = ["😀", "🤙", "👍🏽", "👨‍👩‍👧", "🇧🇷", "\U0001f9e1", "\U0010fffd", "\U0001d54f"]
TEXT = ["a", "Z", " ", "0", "é", "ß", "中", "ア", "ש", "ع", "{", "]", ",", ":", "\\u0041", "\\n"]
_CODEPOINTS = random.Random(0).sample(range(0x20, 0xD800), 100) + random.Random(1).sample(
    range(0xE000, 0x110000), 100
)
ALPHABET = CONTROL * 3 + SPECIAL * 3 + EMOJI * 3 + TEXT * 10 + [chr(code) for code in _CODEPOINTS]


@dataclass(frozen=True)
class Verdict:
    id_ok: bool
    sig_ok: bool
    valid: bool


def random_text(rng: random.Random, max_length: int) -> str:
    return "".join(rng.choices(ALPHABET, k=rng.randrange(max_length + 1)))


def random_tags(rng: random.Random) -> list[list[str]]:
    count = rng.choice([0, 1, 2, 5, 20]) if rng.random() < 0.95 else rng.randrange(200, 1000)
    return [
        [rng.choice(["e", "p", "t", "r", "d", "a", random_text(rng, 3) or "x"])]
        + [random_text(rng, 40) for _ in range(rng.randrange(4))]
        for _ in range(count)
    ]


def flip_hex(value: str, rng: random.Random) -> str:
    position = rng.randrange(len(value))
    flipped = format(int(value[position], 16) ^ (1 << rng.randrange(4)), "x")
    return value[:position] + flipped + value[position + 1 :]


Tamper = Callable[[dict[str, Any], random.Random, Event], None]
TAMPERS: dict[str, Tamper] = {
    "none": lambda obj, rng, other: None,
    "content": lambda obj, rng, other: obj.update(
        content=obj["content"] + "!" + random_text(rng, 3)
    ),
    "content_escape": lambda obj, rng, other: obj.update(content=obj["content"] + "\n"),
    "tag_value": lambda obj, rng, other: obj.update(tags=[*obj["tags"], ["t", "x"]]),
    "created_at": lambda obj, rng, other: obj.update(created_at=obj["created_at"] ^ 1),
    "kind": lambda obj, rng, other: obj.update(kind=obj["kind"] ^ 1),
    "sig_bit": lambda obj, rng, other: obj.update(sig=flip_hex(obj["sig"], rng)),
    "sig_other": lambda obj, rng, other: obj.update(sig=other.sig),
    "id_bit": lambda obj, rng, other: obj.update(id=flip_hex(obj["id"], rng)),
    "pubkey_other": lambda obj, rng, other: obj.update(pubkey=other.pubkey),
    "pubkey_off_curve": lambda obj, rng, other: obj.update(pubkey="f" * 64),
    "id_and_sig_other": lambda obj, rng, other: obj.update(id=other.id, sig=other.sig),
}


def generate(rng: random.Random, secrets: list[str]) -> tuple[Event, Event]:
    """An event and another by a different author, to borrow ids, signatures and keys from."""

    def one(secret: str) -> Event:
        return sign_event(
            secret,
            rng.choice([0, 1, 1_700_000_000, rng.randrange(2**40), 2**63 - 1]),
            rng.choice([0, 1, 7, 3, 30_078, 65_535, rng.randrange(65_536)]),
            random_tags(rng),
            random_text(rng, rng.choice([0, 10, 200, 5000])),
        )

    secret, other_secret = rng.sample(secrets, 2)
    return one(secret), one(other_secret)


def our_verdict(text: str) -> tuple[Verdict, RejectReason | None]:
    event = parse_event(text)
    try:
        verify(event)
    except InvalidEvent as exc:
        reason: RejectReason | None = exc.reason
    else:
        reason = None
    return Verdict(compute_id(event) == event.id, verify_signature(event), reason is None), reason


def rust_verdict(text: str) -> Verdict:
    event = nostr_sdk.Event.from_json(text)
    return Verdict(event.verify_id(), event.verify_signature(), event.verify())


def test_verdicts_agree_with_rust_nostr() -> None:
    rng = random.Random(SEED)
    secrets = [format(rng.randrange(1, 2**255), "064x") for _ in range(8)]
    seen: dict[tuple[str, bool], int] = {}
    for index in range(EVENTS):
        event, other = generate(rng, secrets)
        obj = event_to_dict(event)
        tamper = list(TAMPERS)[index % len(TAMPERS)]
        TAMPERS[tamper](obj, rng, other)
        text = json.dumps(
            obj, ensure_ascii=rng.random() < 0.5, separators=rng.choice([None, (",", ":")])
        )
        (ours, reason), theirs = our_verdict(text), rust_verdict(text)
        assert ours == theirs, f"{tamper}: ours {ours}, rust-nostr {theirs}, event {text[:300]!r}"
        if not ours.id_ok:
            assert reason is RejectReason.BAD_ID
        elif not ours.sig_ok:
            assert reason is RejectReason.BAD_SIG
        else:
            assert reason is None
        seen[tamper, ours.valid] = seen.get((tamper, ours.valid), 0) + 1
    assert seen["none", True] == EVENTS // len(TAMPERS)
    assert all(valid is False for tamper, valid in seen if tamper != "none")


def test_ids_agree_with_rust_nostr_computation() -> None:
    rng = random.Random(SEED + 1)
    secrets = [format(rng.randrange(1, 2**255), "064x") for _ in range(4)]
    for _ in range(300):
        event, _ = generate(rng, secrets)
        rust_id = nostr_sdk.EventId.compute(
            nostr_sdk.PublicKey.parse(event.pubkey),
            nostr_sdk.Timestamp.from_secs(event.created_at),
            nostr_sdk.Kind(event.kind),
            [nostr_sdk.Tag.parse(list(tag)) for tag in event.tags],
            event.content,
        )
        assert rust_id.to_hex() == compute_id(event) == event.id
