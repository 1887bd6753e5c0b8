"""A relay's sync progress: which seconds are pulled, which are gaps, and its `SyncCursor` record.

Progress is one contiguous range plus the gaps inside it, so a restarted process knows what is left:
the seconds after the range (new events), the gaps, and the seconds before it (older history).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from bigbrotr.errors import CodecError

NOT_PULLED = "not pulled yet"

Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Gap:
    """Seconds `since..until` (inclusive) whose events could not be proven pulled, and why."""

    since: int
    until: int
    reason: str


@dataclass(frozen=True, slots=True)
class Coverage:
    """Seconds `complete_since..complete_until` (inclusive) are settled: pulled, or listed as a gap.

    Both ends are `None` until a first second is settled. Gaps are disjoint, oldest first.
    """

    complete_since: int | None = None
    complete_until: int | None = None
    gaps: tuple[Gap, ...] = ()

    def __post_init__(self) -> None:
        span = self.span
        if span is None:
            if self.complete_since is not None or self.complete_until is not None or self.gaps:
                raise ValueError(
                    "complete_since and complete_until must both be set, or both be null "
                    "with no gaps"
                )
            return
        since, until = span
        if since > until:
            raise ValueError(f"complete_since {since} is after complete_until {until}")
        floor = since
        for gap in self.gaps:
            if not floor <= gap.since <= gap.until <= until:
                raise ValueError(
                    f"gap {gap.since}..{gap.until} is not inside {since}..{until}, after the "
                    "previous gap"
                )
            floor = gap.until + 1

    @property
    def span(self) -> Span | None:
        """The settled range, or `None` when nothing is settled yet."""
        if self.complete_since is None or self.complete_until is None:
            return None
        return self.complete_since, self.complete_until

    def next_windows(self, now: int, oldest: int = 0) -> list[Span]:
        """Windows still to pull, newest first: new events, then gaps, then older history.

        New events start at `complete_until` itself: events created in that second may have reached
        the relay after it was pulled.
        """
        span = self.span
        if span is None:
            return [(oldest, now)] if oldest <= now else []
        since, until = span
        windows = [(until, now)] if until <= now else []
        windows.extend((gap.since, gap.until) for gap in reversed(self.gaps))
        if oldest < since:
            windows.append((oldest, since - 1))
        return windows

    def merge(self, newer: Coverage) -> Coverage:
        """This progress combined with a later run's: a second is pulled if either run pulled it.

        Seconds between two ranges that do not touch become a gap, so the result stays one range.
        Where both runs list a gap, the newer reason wins.
        """
        mine, theirs = self.span, newer.span
        if theirs is None:
            return self
        if mine is None:
            return newer
        since, until = min(mine[0], theirs[0]), max(mine[1], theirs[1])
        pulled = _union([*_pulled(self), *_pulled(newer)])
        missing = _complement(pulled, since, until)
        return Coverage(since, until, _label(missing, [*newer.gaps, *self.gaps]))


def cursor_record(
    relay_url: str, coverage: Coverage, *, updated_at_ms: int, method: str = "bisection"
) -> dict[str, Any]:
    """The `SyncCursor` value for the `sync-cursors` topic; `method` is `negentropy` for a relay
    known to speak NIP-77, else `bisection`.
    """
    return {
        "relay_url": relay_url,
        "updated_at": updated_at_ms,
        "method": method,
        "complete_since": coverage.complete_since,
        "complete_until": coverage.complete_until,
        "gaps": [
            {"since": gap.since, "until": gap.until, "reason": gap.reason} for gap in coverage.gaps
        ],
    }


def coverage_from_record(record: Mapping[str, Any]) -> Coverage:
    """Read the progress back from a decoded `SyncCursor` value."""
    gaps = tuple(Gap(gap["since"], gap["until"], gap["reason"]) for gap in record["gaps"])
    try:
        return Coverage(record["complete_since"], record["complete_until"], gaps)
    except ValueError as exc:
        raise CodecError(
            f"the sync cursor of {record['relay_url']} is inconsistent ({exc}); the synchronizer "
            "will not resume from it: delete its record from the sync-cursors topic to pull the "
            "relay again"
        ) from exc


def _pulled(coverage: Coverage) -> list[Span]:
    span = coverage.span
    if span is None:
        return []
    return _complement([(gap.since, gap.until) for gap in coverage.gaps], *span)


def _union(spans: Iterable[Span]) -> list[Span]:
    """Sorted, disjoint spans covering the same seconds; touching spans are joined."""
    joined: list[Span] = []
    for since, until in sorted(spans):
        if joined and since <= joined[-1][1] + 1:
            joined[-1] = (joined[-1][0], max(joined[-1][1], until))
        else:
            joined.append((since, until))
    return joined


def _complement(spans: Sequence[Span], since: int, until: int) -> list[Span]:
    """The seconds of `since..until` outside `spans` (sorted and disjoint)."""
    holes: list[Span] = []
    start = since
    for low, high in spans:
        if low > start:
            holes.append((start, min(low - 1, until)))
        start = max(start, high + 1)
        if start > until:
            return holes
    holes.append((start, until))
    return holes


def _label(missing: Sequence[Span], gaps: Sequence[Gap]) -> tuple[Gap, ...]:
    """`missing` as gaps, each second with the reason of the first gap in `gaps` holding it."""
    cuts = sorted(
        {point for low, high in missing for point in (low, high + 1)}
        | {point for gap in gaps for point in (gap.since, gap.until + 1)}
    )
    labelled: list[Gap] = []
    for start, end in pairwise(cuts):
        if not any(low <= start <= high for low, high in missing):
            continue
        reason = next((gap.reason for gap in gaps if gap.since <= start <= gap.until), NOT_PULLED)
        last = labelled[-1] if labelled else None
        if last is not None and last.until == start - 1 and last.reason == reason:
            labelled[-1] = Gap(last.since, end - 1, reason)
        else:
            labelled.append(Gap(start, end - 1, reason))
    return tuple(labelled)
