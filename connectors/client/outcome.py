"""What a subscription yields and how it ended: the record the synchronizer and monitor act on."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class EndReason(StrEnum):
    """Why a subscription ended; each value is stable (metrics and probes file under it)."""

    EOSE = "eose"
    CLOSED = "closed"
    STOPPED = "stopped"
    MAX_EVENTS = "max_events"
    IDLE_TIMEOUT = "idle_timeout"
    TOTAL_TIMEOUT = "total_timeout"
    TOO_LARGE = "too_large"
    RATE_LIMITED = "rate_limited"
    PROTOCOL_ERROR = "protocol_error"
    DISCONNECTED = "disconnected"
    CONNECT_FAILED = "connect_failed"
    URL_REFUSED = "url_refused"
    AUTH_REQUIRED = "auth_required"
    AUTH_FAILED = "auth_failed"


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """One EVENT for our subscription: `text` is the event object exactly as the relay sent it.

    `event_id` and `created_at` are what the object claims (None when absent or mistyped): good
    enough to key `events.raw` and to move a sync cursor, never proof that the event is genuine.
    `seen_at` is Unix time in seconds. `fields` is the decoded object (see `EventFrame`).
    """

    text: str
    event_id: str | None
    created_at: int | None
    seen_at: float
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SubscriptionResult:
    """How one REQ went. Times are milliseconds: `connect_ms` covers DNS, TCP, proxy, TLS and the
    websocket handshake (None when the subscription reused an open connection); `first_event_ms`
    and `eose_ms` count from the REQ.
    """

    relay_url: str
    subscription_id: str
    end_reason: EndReason
    detail: str
    events: int
    garbage_frames: int
    garbage_samples: tuple[str, ...]
    ignored_frames: int
    notices: tuple[str, ...]
    authenticated: bool
    connect_ms: float | None
    first_event_ms: float | None
    eose_ms: float | None
    duration_ms: float


@dataclass(frozen=True, slots=True)
class Fetched:
    """A whole history subscription collected in memory (bounded by `ClientLimits.max_events`)."""

    events: list[ReceivedEvent]
    result: SubscriptionResult
