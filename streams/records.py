"""Pure mapping between topic records and validation outcomes; the agents only move bytes."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from faust.types import EventT

from bigbrotr.nostr import Event, InvalidEvent, event_to_dict

VALIDATOR_STAGE = "validator"


def event_record(event: Event, relay_url: str | None, seen_at: datetime) -> dict[str, Any]:
    """The `Event` topic value: the canonical event plus where and when it was first seen."""
    return {**event_to_dict(event), "first_seen_relay": relay_url, "first_seen_at": seen_at}


def sighting_record(event_id: str, raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "relay_url": raw["relay_url"],
        "seen_at": raw["seen_at"],
        "source": raw["source"],
    }


def reject_record(error: InvalidEvent, raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "reason": str(error.reason),
        "detail": error.detail,
        "stage": VALIDATOR_STAGE,
        "relay_url": raw["relay_url"],
        "seen_at": raw["seen_at"],
        "source": raw["source"],
        "original": raw["raw"],
    }


def undecodable_record(detail: str, value: bytes, seen_at: datetime, source: str) -> dict[str, Any]:
    """A Kafka record that is not a RawEvent at all still becomes a dead letter, bytes intact."""
    return {
        "reason": "bad_record",
        "detail": detail,
        "stage": VALIDATOR_STAGE,
        "relay_url": None,
        "seen_at": seen_at,
        "source": source,
        "original": value,
    }


def external_raw_record(value: bytes, topic: str, seen_at: datetime) -> dict[str, Any]:
    """Plain event JSON from another system enters `events.raw` with its source recorded."""
    return {"relay_url": None, "seen_at": seen_at, "raw": value, "source": f"external:{topic}"}


def claimed_id(value: bytes) -> bytes:
    """The `id` an event claims, for keying `events.raw`; empty when there is none to read.

    A wrong or missing key is harmless: the validator re-keys valid events by their real id.
    """
    try:
        claimed = json.loads(value).get("id")
    except (ValueError, AttributeError, RecursionError):
        return b""
    return claimed.encode() if isinstance(claimed, str) and len(claimed) == 64 else b""


def record_id(source: EventT[Any]) -> str:
    """Where a record sits (`partition:offset`): the value of the claims it makes."""
    return f"{source.message.partition}:{source.message.offset}"


def sighting_key(event_id: str, raw: dict[str, Any]) -> str:
    """One fact per (event, relay, time): replaying the same raw record adds nothing."""
    seen_at: datetime = raw["seen_at"]
    return f"{event_id}|{raw['relay_url'] or ''}|{int(seen_at.timestamp() * 1000)}"
