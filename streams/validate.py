"""The validator as pure steps: raw bytes in, a verified `Event` out, or a reasoned `InvalidEvent`.

Each step is a small function over (event, limits, now) applied in order, so each can be tested
alone and the order is visible in one place. Cheap checks run before the signature check, which
is most of the cost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bigbrotr.config import StreamSettings
from bigbrotr.nostr import Event, InvalidEvent, RejectReason, check_not_future, parse_event, verify


@dataclass(frozen=True)
class Limits:
    """What the validator accepts; from `streams.*` settings."""

    max_event_bytes: int = 256 * 1024
    max_content_bytes: int = 128 * 1024
    max_tags: int = 2500
    max_future_skew_s: int = 900

    @classmethod
    def from_settings(cls, settings: StreamSettings) -> Limits:
        return cls(
            max_event_bytes=settings.max_event_bytes,
            max_content_bytes=settings.max_content_bytes,
            max_tags=settings.max_tags,
            max_future_skew_s=settings.max_future_skew_s,
        )


Check = Callable[[Event, Limits, int], None]


def check_content_size(event: Event, limits: Limits, now: int) -> None:
    size = len(event.content.encode())
    if size > limits.max_content_bytes:
        raise InvalidEvent(
            RejectReason.TOO_LARGE,
            f"content is {size} bytes, the limit is {limits.max_content_bytes}",
        )


def check_tag_count(event: Event, limits: Limits, now: int) -> None:
    if len(event.tags) > limits.max_tags:
        raise InvalidEvent(
            RejectReason.TOO_LARGE, f"{len(event.tags)} tags, the limit is {limits.max_tags}"
        )


def check_timestamp(event: Event, limits: Limits, now: int) -> None:
    check_not_future(event, now=now, tolerance=limits.max_future_skew_s)


def check_id_and_signature(event: Event, limits: Limits, now: int) -> None:
    verify(event)


CHECKS: Sequence[Check] = (
    check_content_size,
    check_tag_count,
    check_timestamp,
    check_id_and_signature,
)


def validate(raw: bytes, limits: Limits, now: int, checks: Sequence[Check] = CHECKS) -> Event:
    """Parse and check one event; raise InvalidEvent(reason, detail) at the first failure."""
    event = parse_event(raw, max_bytes=limits.max_event_bytes)
    for check in checks:
        check(event, limits, now)
    return event


def validate_each(texts: Sequence[bytes], limits: Limits, now: int) -> list[Event | InvalidEvent]:
    """`validate` over many texts: each verdict is the event or why it was rejected."""
    verdicts: list[Event | InvalidEvent] = []
    for text in texts:
        try:
            verdicts.append(validate(text, limits, now))
        except InvalidEvent as error:
            verdicts.append(error)
    return verdicts


class BatchValidator:
    """Validates a batch against the limits in force; SIGHUP replaces `limits`, and the next
    batch is checked against the new ones.

    In the event loop on purpose: on threads, each signature check hands the GIL back and has
    to win it again from the Kafka consumer's thread, which measured slower than one thread.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits

    def validate(self, texts: Sequence[bytes], now: int) -> list[Event | InvalidEvent]:
        return validate_each(texts, self.limits, now)
