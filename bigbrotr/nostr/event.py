"""The NIP-01 event: strict parsing, the canonical id serialisation, BIP-340 signing and checking.

Parsing runs on every raw event a relay sends, so each check is a C-level call (json, re, str, set)
rather than a Python loop over characters.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from itertools import chain
from typing import Any

import coincurve

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")
# A \u escape in the high-surrogate or low-surrogate range: the only way valid UTF-8 JSON text can
# decode to a string that cannot be encoded back to UTF-8.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_FIELDS = ("id", "pubkey", "created_at", "kind", "tags", "content", "sig")
_MAX_KIND = 65_535
_MAX_CREATED_AT = 2**63 - 1

# NIP-01 escapes exactly \n \" \\ \r \t \b \f and writes the other U+0000-U+001F as \u00XX;
# ensure_ascii=False leaves all other characters (U+007F, U+2028, non-BMP) literal, as NIP-01 wants.
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
)

Tags = tuple[tuple[str, ...], ...]


class RejectReason(StrEnum):
    """Machine-readable reason an event was refused; the stream validator files rejects under it."""

    BAD_JSON = "bad_json"
    BAD_UTF8 = "bad_utf8"
    BAD_SHAPE = "bad_shape"
    BAD_ID = "bad_id"
    BAD_SIG = "bad_sig"
    FUTURE = "future"
    BAD_KIND = "bad_kind"
    TOO_LARGE = "too_large"


class InvalidEvent(ValueError):  # noqa: N818  (the name reads as a verdict on the event)
    """An event that must not be archived; `reason` is a stable code, `detail` says why."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Event:
    """A NIP-01 event; construct through `parse_event` or `sign_event` so the fields are checked."""

    id: str
    pubkey: str
    created_at: int
    kind: int
    tags: Tags
    content: str
    sig: str


def parse_event(raw: bytes | str, *, max_bytes: int | None = None) -> Event:
    """Parse event JSON text strictly; extra fields are tolerated, anything ambiguous is refused.

    Does not check the id or signature: call `verify` for that.
    """
    text, size = _decode(raw)
    if max_bytes is not None and size > max_bytes:
        raise InvalidEvent(
            RejectReason.TOO_LARGE, f"event is {size} bytes, the limit is {max_bytes}"
        )
    try:
        obj = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidEvent(RejectReason.BAD_JSON, f"not valid JSON: {exc}") from exc
    event = event_from_object(obj)
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        _check_encodable(event)
    return event


def _decode(raw: bytes | str) -> tuple[str, int]:
    """The text and its size in UTF-8 bytes; refuses invalid UTF-8 and lone surrogates."""
    try:
        if isinstance(raw, str):
            return raw, len(raw.encode("utf-8"))
        return raw.decode("utf-8"), len(raw)
    except UnicodeError as exc:
        raise InvalidEvent(RejectReason.BAD_UTF8, f"not valid UTF-8: {exc}") from exc


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        counts = Counter(key for key, _ in pairs)
        duplicates = sorted(key for key, count in counts.items() if count > 1)
        raise ValueError(f"duplicate key(s) {', '.join(duplicates)}")
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def event_from_object(obj: Any) -> Event:
    """The event a decoded JSON object describes, checked as `parse_event` checks it.

    For callers that hold the object already (the relay client decodes every frame); what only
    the text shows (duplicate keys, lone surrogate escapes, its size) is for `parse_event`.
    """
    if type(obj) is not dict:
        raise InvalidEvent(RejectReason.BAD_SHAPE, "an event must be a JSON object")
    missing = [name for name in _FIELDS if name not in obj]
    if missing:
        raise InvalidEvent(RejectReason.BAD_SHAPE, f"missing field(s): {', '.join(missing)}")
    event_id, pubkey, sig = obj["id"], obj["pubkey"], obj["sig"]
    created_at, kind, tags, content = obj["created_at"], obj["kind"], obj["tags"], obj["content"]
    if type(event_id) is not str or not _HEX64.fullmatch(event_id):
        raise InvalidEvent(RejectReason.BAD_SHAPE, "id must be 64 lowercase hex characters")
    if type(pubkey) is not str or not _HEX64.fullmatch(pubkey):
        raise InvalidEvent(RejectReason.BAD_SHAPE, "pubkey must be 64 lowercase hex characters")
    if type(sig) is not str or not _HEX128.fullmatch(sig):
        raise InvalidEvent(RejectReason.BAD_SHAPE, "sig must be 128 lowercase hex characters")
    if type(created_at) is not int or not 0 <= created_at <= _MAX_CREATED_AT:
        raise InvalidEvent(RejectReason.BAD_SHAPE, "created_at must be a non-negative integer")
    if type(kind) is not int:
        raise InvalidEvent(RejectReason.BAD_SHAPE, "kind must be an integer")
    if not 0 <= kind <= _MAX_KIND:
        raise InvalidEvent(RejectReason.BAD_KIND, f"kind {kind} is outside 0..{_MAX_KIND}")
    if type(content) is not str:
        raise InvalidEvent(RejectReason.BAD_SHAPE, "content must be a string")
    return Event(event_id, pubkey, created_at, kind, _tags_from_json(tags), content, sig)


def _tags_from_json(tags: Any) -> Tags:
    if type(tags) is not list or not set(map(type, tags)) <= {list}:
        raise InvalidEvent(RejectReason.BAD_SHAPE, "tags must be a list of lists")
    frozen = tuple(map(tuple, tags))
    if not set(map(type, chain.from_iterable(frozen))) <= {str}:
        raise InvalidEvent(RejectReason.BAD_SHAPE, "every tag item must be a string")
    return frozen


def _check_encodable(event: Event) -> None:
    try:
        event.content.encode("utf-8")
        "".join(item for tag in event.tags for item in tag).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidEvent(
            RejectReason.BAD_UTF8, f"a \\u escape decodes to a lone surrogate: {exc}"
        ) from exc


def check_not_future(event: Event, *, now: int, tolerance: int) -> None:
    """Refuse events dated more than `tolerance` seconds after `now` (clock skew allowance)."""
    if event.created_at > now + tolerance:
        raise InvalidEvent(
            RejectReason.FUTURE,
            f"created_at {event.created_at} is {event.created_at - now}s ahead of now",
        )


def serialize_for_id(
    pubkey: str, created_at: int, kind: int, tags: Sequence[Sequence[str]], content: str
) -> bytes:
    """The NIP-01 byte string whose SHA-256 is the event id."""
    return _ENCODER.encode([0, pubkey, created_at, kind, tags, content]).encode("utf-8")


def compute_id(event: Event) -> str:
    """The id the event's fields commit to (hex), whatever id it claims."""
    serialized = serialize_for_id(
        event.pubkey, event.created_at, event.kind, event.tags, event.content
    )
    return hashlib.sha256(serialized).hexdigest()


@lru_cache(maxsize=8192)
def _xonly_key(pubkey: str) -> coincurve.PublicKeyXOnly | None:
    """Parsed keys are cached because the same authors recur across millions of events."""
    try:
        return coincurve.PublicKeyXOnly(bytes.fromhex(pubkey))
    except ValueError:
        return None


def verify_signature(event: Event) -> bool:
    """Whether `sig` is a valid BIP-340 signature by `pubkey` over the claimed `id`."""
    key = _xonly_key(event.pubkey)
    if key is None:
        return False
    return bool(key.verify(bytes.fromhex(event.sig), bytes.fromhex(event.id)))


def verify(event: Event) -> None:
    """Refuse an event whose id does not match its fields or whose signature does not verify."""
    expected = compute_id(event)
    if event.id != expected:
        raise InvalidEvent(RejectReason.BAD_ID, f"id {event.id} does not match content {expected}")
    if not verify_signature(event):
        raise InvalidEvent(RejectReason.BAD_SIG, f"signature does not verify for id {event.id}")


def sign_event(
    secret_key_hex: str,
    created_at: int,
    kind: int,
    tags: Sequence[Sequence[str]],
    content: str,
) -> Event:
    """Build and sign an event (the monitor's NIP-66 events, tests, the demo).

    The result goes through the same shape checks as received events, so we never publish an event
    that our own validator, or a relay, would refuse.
    """
    secret = bytes.fromhex(secret_key_hex)
    pubkey = coincurve.PublicKeyXOnly.from_secret(secret).format().hex()
    frozen_tags = tuple(tuple(tag) for tag in tags)
    digest = hashlib.sha256(serialize_for_id(pubkey, created_at, kind, frozen_tags, content))
    sig = coincurve.PrivateKey(secret).sign_schnorr(digest.digest())
    event = Event(digest.hexdigest(), pubkey, created_at, kind, frozen_tags, content, sig.hex())
    event_from_object(event_to_dict(event))
    return event


def event_to_dict(event: Event) -> dict[str, Any]:
    """The event as a JSON-ready dict, fields in NIP-01 order."""
    return {
        "id": event.id,
        "pubkey": event.pubkey,
        "created_at": event.created_at,
        "kind": event.kind,
        "tags": [list(tag) for tag in event.tags],
        "content": event.content,
        "sig": event.sig,
    }


def event_to_json(event: Event) -> str:
    """Canonical event JSON: NIP-01 field order, compact, non-ASCII literal, as relays expect."""
    return _ENCODER.encode(event_to_dict(event))
