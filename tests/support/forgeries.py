"""Events a hostile relay forges, each with the reject reason the validator must file it under.

Every forgery keeps the look of a real event (64-hex ids, 128-hex signatures, plausible times) and
breaks exactly one thing, so a test that sees the wrong reason knows which check misjudged it. The
catalogue is shared by the property tests (the validator alone) and the hostile relay (the whole
pipeline, relay to `rejects`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import coincurve

from bigbrotr.nostr import Event, RejectReason, event_to_dict, sign_event
from tests.support.events import BASE_TIME, TEST_KEYS

# A validator with `max_content_bytes=MAX_CONTENT_BYTES` files each forgery under its reason.
FORGERY_NOW = 1_800_000_000
MAX_CONTENT_BYTES = 4096
NESTING = 200


@dataclass(frozen=True, slots=True)
class Forgery:
    name: str
    text: str
    reason: RejectReason


def _text(fields: dict[str, Any]) -> str:
    return json.dumps(fields)


def _signed(key: int, content: str, *, created_at: int = BASE_TIME, kind: int = 1) -> Event:
    return sign_event(TEST_KEYS[key], created_at, kind, [["t", "forged"]], content)


def forgeries(label: str = "forged", now: int = FORGERY_NOW) -> tuple[Forgery, ...]:
    """One of each forgery; `label` goes into the contents so two catalogues share no id, and
    `now` is the validator's clock (the future one is dated a day after it).
    """
    a = event_to_dict(_signed(0, f"{label} a"))
    b = event_to_dict(_signed(1, f"{label} b"))
    made: list[tuple[str, dict[str, Any] | str, RejectReason]] = [
        (
            "content tampered after signing",
            {**a, "content": a["content"] + "!"},
            RejectReason.BAD_ID,
        ),
        ("one signature digit flipped", {**a, "sig": _flip(a["sig"])}, RejectReason.BAD_SIG),
        ("id and sig of another event", {**a, "id": b["id"], "sig": b["sig"]}, RejectReason.BAD_ID),
        ("pubkey of another author", {**a, "pubkey": b["pubkey"]}, RejectReason.BAD_ID),
        ("id and pubkey swapped", {**a, "id": a["pubkey"], "pubkey": a["id"]}, RejectReason.BAD_ID),
        ("right id, signed by another key", _signed_by_other(a), RejectReason.BAD_SIG),
        (
            "kind and created_at swapped",
            {**a, "kind": a["created_at"], "created_at": a["kind"]},
            RejectReason.BAD_KIND,
        ),
        (
            "tags and content swapped",
            {**a, "tags": a["content"], "content": a["tags"]},
            RejectReason.BAD_SHAPE,
        ),
        ("uppercase id", {**a, "id": a["id"].upper()}, RejectReason.BAD_SHAPE),
        ("signature missing", {k: v for k, v in a.items() if k != "sig"}, RejectReason.BAD_SHAPE),
        (
            "created_at as a float",
            {**a, "created_at": a["created_at"] + 0.5},
            RejectReason.BAD_SHAPE,
        ),
        (
            "tags nested deep",
            {**a, "tags": [_nested(NESTING)]},
            RejectReason.BAD_SHAPE,
        ),
        (
            "signed, dated a day ahead",
            event_to_dict(_signed(2, f"{label} future", created_at=now + 86_400)),
            RejectReason.FUTURE,
        ),
        (
            "signed, content over the limit",
            event_to_dict(_signed(3, f"{label} " + "x" * MAX_CONTENT_BYTES)),
            RejectReason.TOO_LARGE,
        ),
        ("lone surrogate escape in content", {**a, "content": "\ud800"}, RejectReason.BAD_UTF8),
        ("content key twice", _text(b)[:-1] + ', "content": "other"}', RejectReason.BAD_JSON),
    ]
    return tuple(
        Forgery(name, fields if isinstance(fields, str) else _text(fields), reason)
        for name, fields, reason in made
    )


def _flip(hex_text: str) -> str:
    return ("1" if hex_text[0] != "1" else "2") + hex_text[1:]


def _signed_by_other(a: dict[str, Any]) -> dict[str, Any]:
    """Event a, whose id is right, with a valid BIP-340 signature of that id by another key."""
    signature = coincurve.PrivateKey(bytes.fromhex(TEST_KEYS[1])).sign_schnorr(
        bytes.fromhex(a["id"])
    )
    return {**a, "sig": signature.hex()}


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value
