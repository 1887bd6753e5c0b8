"""What one relay may cost us: time, bytes, message rate, events and garbage.

Every breach ends the subscription with a reason instead of a hang or an exception, so a hostile
relay costs at most these bounds. The defaults suit a synchronizer pulling history from the open
network; config will wire them later.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

# Refills add up in floating point; without slack, 10 refills of 0.1 fall short of one token.
_SLACK = 1e-9
# An event the synchronizer reads is published as one `events.raw` record, and Kafka takes records
# up to 1,000,000 bytes by default (librdkafka's `message.max.bytes`): a larger frame limit let a
# relay crash `bigbrotr sync` with one event of about 1 MB. The margin is the record's envelope.
_MAX_FRAME_BYTES = 960_000


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """Per-connection and per-subscription bounds (seconds, bytes, counts).

    `idle_timeout` bounds the wait between two messages until EOSE; a live subscription past its
    EOSE may be quiet for long, so only `total_timeout` and websocket keepalive pings bound it.
    The message rate is a token bucket: `message_burst` messages at once, refilled at
    `max_messages_per_second`; a relay that outruns it is dropped (`rate_limited`), because
    reading slower would keep a flooding relay connected until the total timeout.
    """

    connect_timeout: float = 10.0
    idle_timeout: float = 30.0
    total_timeout: float = 300.0
    close_timeout: float = 5.0
    max_frame_bytes: int = _MAX_FRAME_BYTES
    max_messages_per_second: float = 5_000.0
    message_burst: int = 10_000
    max_events: int = 100_000
    max_garbage_frames: int = 100

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if value < 0 or (value == 0 and field.name != "max_garbage_frames"):
                raise ValueError(f"client limit {field.name} must be positive, not {value!r}")


class TokenBucket:
    """Allows `burst` takes at once, refilled at `rate` per second of the clock it is given."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one; False means the caller is over the rate."""
        elapsed = max(0.0, now - self._stamp)
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        self._stamp = now
        if self._tokens < 1.0 - _SLACK:
            return False
        self._tokens -= 1.0
        return True
