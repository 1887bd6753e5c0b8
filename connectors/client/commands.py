"""Client-to-relay messages (NIP-01 REQ and CLOSE, NIP-42 AUTH, NIP-77 NEG-*), encoded without
I/O.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from bigbrotr.nostr import Event, Filter, event_to_json, sign_event

AUTH_KIND = 22242
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def req_message(subscription_id: str, filters: Sequence[Filter]) -> str:
    return _COMPACT.encode(["REQ", subscription_id, *(flt.to_dict() for flt in filters)])


def close_message(subscription_id: str) -> str:
    return _COMPACT.encode(["CLOSE", subscription_id])


def neg_open_message(subscription_id: str, flt: Filter, message: bytes) -> str:
    return _COMPACT.encode(["NEG-OPEN", subscription_id, flt.to_dict(), message.hex()])


def neg_msg_message(subscription_id: str, message: bytes) -> str:
    return _COMPACT.encode(["NEG-MSG", subscription_id, message.hex()])


def neg_close_message(subscription_id: str) -> str:
    return _COMPACT.encode(["NEG-CLOSE", subscription_id])


def auth_event(secret_key_hex: str, relay_url: str, challenge: str, created_at: int) -> Event:
    """The kind 22242 event that answers a NIP-42 challenge for one relay."""
    tags = [["relay", relay_url], ["challenge", challenge]]
    return sign_event(secret_key_hex, created_at, AUTH_KIND, tags, "")


def auth_message(event: Event) -> str:
    return f'["AUTH",{event_to_json(event)}]'
