"""Differential test: the stream validator (`streams.validate.validate`) against rust-nostr.

Over 10,000 event texts: valid events (the nostr core's generator: unicode, control characters,
emoji, large tags), the same events written differently (whitespace, key order, `\\u` escapes),
and invalid ones (the core's tampers, swapped fields, wrong types, missing fields, duplicate
keys). Signing is the slow part, so each signed event is written many ways.

Where the verdicts legitimately differ, a rule about the text says so, and the test checks what
the rule claims instead of skipping the text:
- `future` and `too_large` are our policy, not validity; rust-nostr has no such limits, so it is
  compared with our verdict under limits that cannot bind;
- NIP-01 fixes id, pubkey and sig as lowercase hex of 32, 32 and 64 bytes; we refuse anything
  else (`bad_shape`), while rust-nostr takes uppercase and reads only the leading bytes of longer
  hex, so it judges such a text as if lowercased and cut to size;
- rust-nostr refuses an empty tag (`[]`), which NIP-01 allows and we accept.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from bigbrotr.nostr import (
    Event,
    InvalidEvent,
    RejectReason,
    event_to_dict,
    event_to_json,
    sign_event,
)
from streams.validate import Limits, validate
from tests.unit.test_nostr_differential import TAMPERS, generate

nostr_sdk = pytest.importorskip("nostr_sdk")

SEED = 20_260_401
BASE_EVENTS = 1200
# rust-nostr takes milliseconds to parse an event with hundreds of tags, so the large events the
# generator makes (about a quarter) are written once, canonically, and not broken.
LARGE = 4096
LARGE_REWRITES = ("canonical",)
NOW = 1_800_000_000
POLICY = (RejectReason.FUTURE, RejectReason.TOO_LARGE)
UNBOUND = Limits(max_event_bytes=2**62, max_content_bytes=2**62, max_tags=2**62)
UNBOUND_NOW = 2**63
FIELDS = ("id", "pubkey", "created_at", "kind", "tags", "content", "sig")
WHITESPACE = ["", "", " ", "\n", "\t", "\r\n", "  "]
HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
HEX_SIZES = {"id": 64, "pubkey": 64, "sig": 128}

Obj = dict[str, Any]


def write_json(value: Any, rng: random.Random, escape: float) -> str:
    """JSON text of `value` with random whitespace, key order and `\\u` escapes (rate `escape`)."""

    def ws() -> str:
        return rng.choice(WHITESPACE)

    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        members = [
            f"{ws()}{write_string(k, rng, escape)}{ws()}:{ws()}{write_json(v, rng, escape)}{ws()}"
            for k, v in items
        ]
        return "{" + (",".join(members) or ws()) + "}"
    if isinstance(value, list):
        elements = [ws() + write_json(v, rng, escape) + ws() for v in value]
        return "[" + (",".join(elements) or ws()) + "]"
    if isinstance(value, str):
        return write_string(value, rng, escape)
    return json.dumps(value)


def write_string(text: str, rng: random.Random, escape: float) -> str:
    if not escape:
        return json.dumps(text, ensure_ascii=False)
    out = []
    for char in text:
        code = ord(char)
        if not (code < 0x20 or char in '"\\' or rng.random() < escape):
            out.append(char)
        elif code > 0xFFFF:
            high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
            out.append(f"\\u{high:04x}\\u{low:{'04X' if rng.random() < 0.3 else '04x'}}")
        elif char in '"\\' and rng.random() < 0.5:
            out.append("\\" + char)
        else:
            out.append(f"\\u{code:{'04X' if rng.random() < 0.3 else '04x'}}")
    return '"' + "".join(out) + '"'


def _without(obj: Obj, rng: random.Random) -> Obj:
    missing = rng.choice(FIELDS)
    return {k: v for k, v in obj.items() if k != missing}


def _swap(a: str, b: str) -> Callable[[Obj, random.Random], Obj]:
    return lambda obj, rng: {**obj, a: obj[b], b: obj[a]}


def _set(field: str, value: Callable[[Any], Any]) -> Callable[[Obj, random.Random], Obj]:
    return lambda obj, rng: {**obj, field: value(obj[field])}


# Valid events written another way.
REWRITES: dict[str, Callable[[Obj, random.Random], str]] = {
    "canonical": lambda obj, rng: json.dumps(obj, ensure_ascii=False, separators=(",", ":")),
    "ascii": lambda obj, rng: json.dumps(obj, ensure_ascii=True),
    "spaced_shuffled": lambda obj, rng: write_json(obj, rng, 0.0),
    "some_escapes": lambda obj, rng: write_json(obj, rng, 0.3),
    "all_escapes": lambda obj, rng: write_json(obj, rng, 1.0),
}

# Broken events (one per base event, in rotation), each also written another way.
BREAKS: dict[str, Callable[[Obj, random.Random], Obj]] = {
    "swap_id_pubkey": _swap("id", "pubkey"),
    "swap_id_sig": _swap("id", "sig"),
    "swap_content_kind": _swap("content", "kind"),
    "swap_pubkey_sig": _swap("pubkey", "sig"),
    "kind_string": _set("kind", str),
    "kind_float": _set("kind", float),
    "kind_bool": _set("kind", lambda kind: True),
    "kind_too_big": _set("kind", lambda kind: kind + 65_536),
    "created_at_string": _set("created_at", str),
    "created_at_float": _set("created_at", lambda at: at + 0.5),
    "created_at_negative": _set("created_at", lambda at: -1 - at),
    "tags_object": _set("tags", lambda tags: {"t": "x"}),
    "tags_flat": _set("tags", lambda tags: ["t", "x"]),
    "tag_item_number": _set("tags", lambda tags: [*tags, ["t", 1]]),
    "tag_item_null": _set("tags", lambda tags: [["t", None]]),
    "content_number": _set("content", lambda content: 7),
    "content_null": _set("content", lambda content: None),
    "id_number": _set("id", lambda value: 1),
    "id_short": _set("id", lambda value: value[:-2]),
    "sig_long": _set("sig", lambda value: value + "00"),
    "id_long": _set("id", lambda value: value + "ff"),
    "pubkey_long": _set("pubkey", lambda value: value + "0a"),
    "pubkey_not_hex": _set("pubkey", lambda value: "g" + value[1:]),
    "missing_field": _without,
}

# Text-level damage to a valid event's text.
TEXT_BREAKS: dict[str, Callable[[str], str]] = {
    "duplicate_key": lambda text: '{"content":"x",' + text[1:],
    "duplicate_same_key": lambda text: text[:-1] + ',"kind":' + str(json.loads(text)["kind"]) + "}",
    "lone_surrogate": lambda text: text.replace('"content":"', '"content":"\\ud800', 1),
    "trailing_garbage": lambda text: text + "x",
    "in_array": lambda text: "[" + text + "]",
    "truncated": lambda text: text[: len(text) // 2],
    "nan": lambda text: re.sub(r'"kind":\d+', '"kind":NaN', text, count=1),
}


def our_verdict(text: str) -> tuple[bool, RejectReason | None]:
    raw = text.encode()
    try:
        validate(raw, Limits(), NOW)
    except InvalidEvent as error:
        if error.reason not in POLICY:
            return False, error.reason
        try:
            validate(raw, UNBOUND, UNBOUND_NOW)
        except InvalidEvent as unbound_error:
            return False, unbound_error.reason
        return True, error.reason
    return True, None


def rust_verdict(text: str) -> bool:
    try:
        return bool(nostr_sdk.Event.from_json(text).verify())
    except nostr_sdk.NostrSdkError:
        return False


def difference_rule(text: str) -> str | None:
    """Which legitimate difference applies to this text, if any."""
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    if _lenient_hex(obj) != obj:
        return "lenient_hex"
    tags = obj.get("tags")
    if isinstance(tags, list) and [] in tags:
        return "empty_tag"
    return None


def _lenient_hex(obj: Obj) -> Obj:
    """The hex fields as rust-nostr reads them: lowercased, longer ones cut to size."""
    read = dict(obj)
    for name, size in HEX_SIZES.items():
        value = obj.get(name)
        if isinstance(value, str) and len(value) >= size and HEX.fullmatch(value):
            read[name] = value.lower()[:size]
    return read


def corpus() -> list[tuple[str, str]]:
    """(category, text) pairs, the same on every run."""
    rng = random.Random(SEED)
    secrets = [format(rng.randrange(1, 2**255), "064x") for _ in range(8)]
    texts: list[tuple[str, str]] = []
    tampers, breaks, text_breaks = list(TAMPERS), list(BREAKS), list(TEXT_BREAKS)
    for index in range(BASE_EVENTS):
        event, other = generate(rng, secrets)
        obj = event_to_dict(event)
        if len(event_to_json(event)) > LARGE:
            texts += [(name, REWRITES[name](obj, rng)) for name in LARGE_REWRITES]
            continue
        texts += [(name, rewrite(obj, rng)) for name, rewrite in REWRITES.items()]
        tamper = tampers[index % len(tampers)]
        tampered = event_to_dict(event)
        TAMPERS[tamper](tampered, rng, other)
        texts.append((f"tamper_{tamper}", write_json(tampered, rng, 0.1)))
        for offset in (0, 7, 14):
            broken = breaks[(index + offset) % len(breaks)]
            texts.append((broken, write_json(BREAKS[broken](obj, rng), rng, 0.1)))
        damage = text_breaks[index % len(text_breaks)]
        texts.append((damage, TEXT_BREAKS[damage](event_to_json(event))))
        texts.append(("uppercase_hex", json.dumps({**obj, "sig": event.sig.upper()})))
        if index % 25 == 0:
            texts.append(("empty_tag", event_to_json(_with_empty_tag(event, secrets[0]))))
    return texts


def _with_empty_tag(event: Event, secret: str) -> Event:
    tags = [*event.tags[:3], ()]
    return sign_event(secret, event.created_at, event.kind, tags, event.content[:100])


def test_verdicts_agree_with_rust_nostr_on_ten_thousand_texts() -> None:
    texts = corpus()
    assert len(texts) >= 10_000
    outcomes: Counter[tuple[str, bool]] = Counter()
    rules: Counter[str] = Counter()
    policy = 0
    for category, text in texts:
        (ours, reason), theirs = our_verdict(text), rust_verdict(text)
        policy += reason in POLICY
        rule = difference_rule(text)
        where = f"{category}: ours {ours} ({reason}), rust-nostr {theirs}: {text[:300]!r}"
        if rule == "lenient_hex":
            assert not ours, where
            assert reason is RejectReason.BAD_SHAPE, where
            assert theirs == our_verdict(json.dumps(_lenient_hex(json.loads(text))))[0], where
        elif rule == "empty_tag":
            assert not theirs, where
        else:
            assert ours == theirs, where
        rules[rule or "agree"] += 1
        outcomes[category, ours] += 1
    small = outcomes["ascii", True]
    assert small > BASE_EVENTS // 2
    for name in REWRITES:
        assert outcomes[name, False] == 0, name
        assert outcomes[name, True] == (BASE_EVENTS if name in LARGE_REWRITES else small), name
    assert outcomes["empty_tag", True] > 0
    assert outcomes["uppercase_hex", False] == small
    assert rules["lenient_hex"] > BASE_EVENTS
    broken = [*BREAKS, *TEXT_BREAKS, *(f"tamper_{t}" for t in TAMPERS if t != "none")]
    assert all(outcomes[name, True] == 0 and outcomes[name, False] > 0 for name in broken)
    assert policy > 1000, "the policy rule should be exercised"
    assert rules["agree"] >= 10_000 - BASE_EVENTS
