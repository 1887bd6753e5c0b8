"""A discovered relay's way to `relays`: pending until a probe succeeds, retried with growing
delays, retired after too many failures. Pure state transitions and their `RelayCandidate` record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from bigbrotr.nostr import Network


class Status(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    RETIRED = "retired"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Wait `delay_s` after the first failed probe, `backoff` times longer after each next one
    (at most `max_delay_s`); retire after `max_attempts` failures.
    """

    max_attempts: int = 5
    delay_s: float = 600.0
    backoff: float = 2.0
    max_delay_s: float = 86_400.0

    def delay_ms(self, failures: int) -> int:
        """The wait after the `failures`-th failed probe."""
        seconds = min(self.max_delay_s, self.delay_s * self.backoff ** (failures - 1))
        return round(seconds * 1000)


@dataclass(frozen=True, slots=True)
class Candidate:
    """The finder's state for one relay URL; times are milliseconds since the Unix epoch."""

    url: str
    network: Network
    source: str
    discovered_at: int
    status: Status
    attempts: int
    updated_at: int
    next_attempt_at: int | None
    last_error: str | None = None

    @classmethod
    def discovered(cls, url: str, network: Network, source: str, now_ms: int) -> Candidate:
        """A URL seen for the first time: due for a probe at once."""
        return cls(url, network, source, now_ms, Status.PENDING, 0, now_ms, now_ms)

    def due(self, now_ms: int) -> bool:
        return (
            self.status is Status.PENDING
            and self.next_attempt_at is not None
            and self.next_attempt_at <= now_ms
        )

    def accepted(self, now_ms: int) -> Candidate:
        return replace(self, status=Status.ACCEPTED, updated_at=now_ms, next_attempt_at=None)

    def failed(self, error: str, now_ms: int, policy: RetryPolicy) -> Candidate:
        """After a failed probe: due again after a longer wait, or retired."""
        attempts = self.attempts + 1
        if attempts >= policy.max_attempts:
            return replace(
                self,
                status=Status.RETIRED,
                attempts=attempts,
                updated_at=now_ms,
                next_attempt_at=None,
                last_error=error,
            )
        return replace(
            self,
            attempts=attempts,
            updated_at=now_ms,
            next_attempt_at=now_ms + policy.delay_ms(attempts),
            last_error=error,
        )

    def record(self) -> dict[str, Any]:
        """The `RelayCandidate` value for the `relay-candidates` topic."""
        return {
            "url": self.url,
            "network": str(self.network),
            "source": self.source,
            "discovered_at": self.discovered_at,
            "status": str(self.status),
            "attempts": self.attempts,
            "updated_at": self.updated_at,
            "next_attempt_at": self.next_attempt_at,
            "last_error": self.last_error,
        }

    def discovery_record(self) -> dict[str, Any]:
        """The `RelayDiscovered` value that makes the relay active on the `relays` topic."""
        return {
            "url": self.url,
            "network": str(self.network),
            "source": self.source,
            "discovered_at": self.discovered_at,
        }


def candidate_from_record(record: Mapping[str, Any]) -> Candidate:
    """Read a decoded `RelayCandidate` value back."""
    next_attempt = record["next_attempt_at"]
    return Candidate(
        url=record["url"],
        network=Network(record["network"]),
        source=record["source"],
        discovered_at=_ms(record["discovered_at"]),
        status=Status(record["status"]),
        attempts=record["attempts"],
        updated_at=_ms(record["updated_at"]),
        next_attempt_at=None if next_attempt is None else _ms(next_attempt),
        last_error=record["last_error"],
    )


def _ms(value: datetime | int) -> int:
    """The codec reads timestamps as datetimes; the state keeps integer milliseconds."""
    return value if isinstance(value, int) else round(value.timestamp() * 1000)
