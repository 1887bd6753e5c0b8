"""Which REQ to send next to pull one time window of a relay's history, and what each answer proves.

Pure: the caller sends the proposed filter, hands back what arrived before EOSE, and repeats until
the planner proposes nothing; the window is then settled, second by second, as pulled or as a gap.

The relay model the proofs rest on: a REQ is answered with the newest matching events, newest
first (in any order within one second), at most min(limit, c) of them, where c is the relay's own
cap: unknown, possibly below its NIP-11 `max_limit` (which only sizes our pages), the same for every
request. Three rules prove completeness, each sound under that model:

- prefix: an answer holds every matching event newer than its oldest event, so a page asked for
  `..until` proves the seconds after its oldest event up to `until`. The oldest second itself may
  have been cut, so the next page ends there, inclusive.
- empty: an answer with no events proves nothing matches.
- short: an answer with fewer than min(limit, floor) events was not cut, so it is everything
  matching. `floor` is the largest answer the relay has sent, a lower bound of c.

A page that is merely shorter than the limit proves nothing (c may be its length), and neither
does a page that brings no new ids: a relay capped at c that holds more than c events in one
second returns the same c again and again. When a page could have been cut by an unknown cap, one
request for all time (`since` 0, as some relays match nothing for a filter without conditions)
raises `floor` as far as any answer can: to c, or to everything the relay holds.

NIP-01 reads `until` inclusively, but some relays (nostr-relay) match `created_at < until`. Asked
for `..until` such a relay silently leaves out the second `until`, so the planner learns which
reading a relay uses, and asks an exclusive one for `until + 1`. Until it knows, it asks for
`until + 1` too, which both readings answer correctly except that an inclusive relay may add
events of the second above: that answer proves the relay inclusive and is asked again with the
real bound. A request whose `until` second is known to hold a matching event tells the two
apart: an exclusive relay answers it without any event of that second. When no such request is
due, one request for a second known to hold an event (`since` = `until`, limit 1) settles it.

A page whose events all share one second cannot move on by time. That second is split by kinds,
then by authors, halving lists until every part is short. NIP-01 has no negation, so values nobody
has seen (other kinds, other authors) can only be asked for when the base filter lists them;
otherwise the second is settled as a gap naming what stays unproven, after pulling what the split
could reach. Request budgets, per window and per crowded second, bound the work: running out, a
failed answer, or an answer that breaks the filter or the order also settle the rest as a gap.

Each page asks again for the oldest second of the one before, and a split second is asked again
in parts, so some events arrive twice. `claim` tells the caller which arrivals are new, so each
event is handed on once per window: the events kept are those of the two lowest seconds still open
to a request (at most what the per-second budget pulls), so memory does not grow with the window.
The answers to the cap and `until` probes only measure the relay; `claim` hands none of them on
(every event of the window still comes in a page).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import TypeVar

from bigbrotr.nostr import Event, Filter, matches
from connectors.sync.cursor import Coverage, Gap

COMMON_KINDS = (0, 1, 3, 5, 6, 7, 16, 1111, 1984, 9735, 10002, 30023)
_SHOWN = 6

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class SyncPolicy:
    """How hard the planner tries before it settles seconds as a gap."""

    page_size: int = 500
    max_requests: int = 5000
    max_requests_per_second: int = 64
    split_kinds: tuple[int, ...] = COMMON_KINDS
    max_filter_values: int = 256

    def __post_init__(self) -> None:
        for name in ("page_size", "max_requests", "max_requests_per_second", "max_filter_values"):
            if getattr(self, name) < 1:
                raise ValueError(f"sync policy {name} must be at least 1")


@dataclass(frozen=True, slots=True)
class RelayCap:
    """What is known of a relay's answers; hand it from one window's planner to the next.

    `floor` is the largest answer the relay has sent, so it never cuts an answer shorter. `probed`
    says a request for all time was made, so no answer can raise `floor` any further.
    `until_exclusive` says whether the relay matches `created_at < until` instead of NIP-01's
    `<=`; None until an answer has shown which.
    """

    floor: int = 0
    probed: bool = False
    until_exclusive: bool | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """What a relay sent for one request.

    `eose` is false when the answer did not end with EOSE (CLOSED, a timeout, a dropped
    connection), `detail` then says why. `unreadable` counts EVENT messages that could not be
    parsed: they still took a place within the relay's cap.
    """

    events: Sequence[Event]
    eose: bool = True
    unreadable: int = 0
    detail: str = ""


_Steps = Generator[Filter, Page, None]


@dataclass(frozen=True, slots=True)
class _Cell:
    """One part of a crowded second: the kinds and authors it admits, `None` for any."""

    kinds: frozenset[int] | None
    authors: frozenset[str] | None

    def admits(self, event: Event) -> bool:
        return (self.kinds is None or event.kind in self.kinds) and (
            self.authors is None or event.pubkey in self.authors
        )


class _Stop(Exception):  # noqa: N818  (control flow: ends the window, not an error to report)
    """Ends the window early; the seconds not yet settled become one gap with this reason."""


class WindowPlanner:
    """Plans the requests that pull seconds `since..until` (inclusive), newest first.

    `base` narrows what is pulled (kinds, authors, tags); the planner sets since, until and limit.
    `max_limit` is the relay's NIP-11 limit, used only to size pages. `cap` is what an earlier
    window of the same relay learned, which can save the probe request. Drive it with::

        while (flt := planner.next_request()) is not None:
            planner.record(await fetch(flt))
    """

    def __init__(
        self,
        since: int,
        until: int,
        *,
        policy: SyncPolicy | None = None,
        base: Filter | None = None,
        max_limit: int | None = None,
        cap: RelayCap | None = None,
    ) -> None:
        if not 0 <= since <= until:
            raise ValueError(f"cannot plan the window {since}..{until}: need 0 <= since <= until")
        self._base = Filter() if base is None else base
        if (self._base.since, self._base.until, self._base.limit) != (None, None, None):
            raise ValueError("the base filter must leave since, until and limit to the planner")
        self._policy = SyncPolicy() if policy is None else policy
        self._since, self._until = since, until
        self._limit = self._policy.page_size
        if max_limit is not None and max_limit >= 1:
            self._limit = min(self._limit, max_limit)
        self._cap = RelayCap() if cap is None else cap
        self._frontier = until + 1
        self._gaps: list[Gap] = []
        self._witness: Event | None = None
        self._whole = _Cell(
            None if self._base.kinds is None else frozenset(self._base.kinds),
            None if self._base.authors is None else frozenset(self._base.authors),
        )
        self._requests = 0
        self._measuring = False
        self._claimed: dict[int, set[Event]] = {}
        self._steps = self._plan()
        self._request: Filter | None = next(self._steps, None)

    def next_request(self) -> Filter | None:
        """The filter to send now, or `None` once the window is settled."""
        return self._request

    def record(self, page: Page) -> None:
        """Take the relay's answer to the filter `next_request` returned."""
        if self._request is None:
            raise RuntimeError("the window is already settled; there is no request to answer")
        try:
            self._request = self._steps.send(page)
        except StopIteration:
            self._request = None

    def claim(self, event: Event) -> bool:
        """Whether `event`, arriving for the current request, is new to this window: not part of
        a probe's answer, and not already claimed. Call it as events arrive.

        Whole events are compared, not ids: a second text under a claimed id is still new.
        """
        if self._measuring:
            return False
        claimed = self._claimed.setdefault(event.created_at, set())
        if event in claimed:
            return False
        claimed.add(event)
        return True

    @property
    def done(self) -> bool:
        return self._request is None

    @property
    def requests(self) -> int:
        """Requests proposed so far."""
        return self._requests

    @property
    def cap(self) -> RelayCap:
        return self._cap

    @property
    def coverage(self) -> Coverage:
        """The settled seconds so far: from `until` down, contiguous, gaps included."""
        if self._frontier > self._until:
            return Coverage()
        gaps = tuple(sorted(self._gaps, key=lambda gap: gap.since))
        return Coverage(self._frontier, self._until, gaps)

    def _plan(self) -> _Steps:
        try:
            yield from self._sweep()
        except _Stop as stop:
            self._settle(self._since, str(stop))

    def _sweep(self) -> _Steps:
        top = self._until
        while top >= self._since:
            page = yield from self._ask(self._since, top, self._whole)
            if (yield from self._proves_all(page)):
                break
            if not page.events:
                raise _Stop("the relay sent only events that could not be parsed")
            oldest = min(event.created_at for event in page.events)
            if oldest == top:
                yield from self._split_second(top, page.events)
            else:
                self._settle(oldest + 1)
            top = oldest if oldest < top else top - 1
            self._forget_above(top + 1)
        self._settle(self._since)

    def _proves_all(self, page: Page) -> Generator[Filter, Page, bool]:
        """Whether the page holds everything its filter matches, probing the cap if that helps."""
        count = _count(page)
        if count == 0 or self._is_short(count):
            return True
        if count < self._limit and not self._cap.probed:
            yield from self._send(replace(self._base, since=0, limit=self._limit), measure=True)
            self._cap = replace(self._cap, probed=True)
            return self._is_short(count)
        return False

    def _split_second(self, second: int, crowded: Iterable[Event]) -> _Steps:
        """Pull one crowded second by kinds and authors, and settle it."""
        found = {event.id: event for event in crowded}
        unproven: list[str] = []
        cells = deque(self._split(self._whole, found, unproven))
        spent = 0
        while cells:
            if spent == self._policy.max_requests_per_second:
                unproven.append(f"the rest after {spent} requests")
                break
            cell = cells.popleft()
            page = yield from self._ask(second, second, cell)
            spent += 1
            found.update((event.id, event) for event in page.events)
            if not self._is_short(_count(page)):
                cells.extend(self._split(cell, found, unproven))
        if not unproven:
            self._settle(second)
            return
        shown = "; ".join(unproven[:_SHOWN])
        more = f"; and {len(unproven) - _SHOWN} more" if len(unproven) > _SHOWN else ""
        self._settle(
            second,
            f"the relay holds more events in this second than it returns per request "
            f"({min(self._limit, self._cap.floor)}); not proven: {shown}{more}",
        )

    def _split(self, cell: _Cell, found: dict[str, Event], unproven: list[str]) -> list[_Cell]:
        """Parts that together match what `cell` matches; parts nobody can list go to `unproven`."""
        size = self._policy.max_filter_values
        if cell.kinds is None:
            seen = {event.kind for event in found.values() if cell.admits(event)}
            kinds = sorted(seen | set(self._policy.split_kinds))
            unproven.append(f"kinds other than {_listed(kinds)}")
            return [replace(cell, kinds=frozenset(part)) for part in _chunks(kinds, size)]
        if len(cell.kinds) > 1:
            return [replace(cell, kinds=frozenset(part)) for part in _halves(sorted(cell.kinds))]
        (kind,) = cell.kinds
        if cell.authors is None:
            authors = sorted({event.pubkey for event in found.values() if cell.admits(event)})
            unproven.append(f"authors of kind {kind} other than the {len(authors)} seen")
            return [replace(cell, authors=frozenset(part)) for part in _chunks(authors, size)]
        if len(cell.authors) > 1:
            return [
                replace(cell, authors=frozenset(part)) for part in _halves(sorted(cell.authors))
            ]
        (author,) = cell.authors
        unproven.append(f"kind {kind} by {author}")
        return []

    def _ask(self, since: int, until: int, cell: _Cell) -> Generator[Filter, Page, Page]:
        """Ask for a page of seconds `since..until` (inclusive) of `cell`; return the answer.

        Learns how the relay reads `until` on the way, asking again when an answer turns out to
        have been for the wrong bound.
        """
        flt = replace(
            self._base,
            since=since,
            until=until,
            limit=self._limit,
            kinds=cell.kinds,
            authors=cell.authors,
        )
        exclusive = self._cap.until_exclusive
        detecting = exclusive is None and self._holds(flt)
        if exclusive is None and not detecting and self._witness is not None:
            yield from self._probe_until(self._witness.created_at)
            exclusive = self._cap.until_exclusive
        above = exclusive is not False and not detecting
        page = yield from self._send(replace(flt, until=until + 1) if above else flt)
        if above and any(event.created_at > until for event in page.events):
            self._cap = replace(self._cap, until_exclusive=False)
            return (yield from self._ask(since, until, cell))
        if not above and exclusive is None:
            at_bound = any(event.created_at == until for event in page.events)
            self._cap = replace(self._cap, until_exclusive=not at_bound)
            if not at_bound:
                return (yield from self._ask(since, until, cell))
        if page.events:
            self._witness = page.events[-1]
        return page

    def _holds(self, flt: Filter) -> bool:
        """Whether the relay is known to hold an event `flt` matches in its `until` second."""
        witness = self._witness
        return witness is not None and witness.created_at == flt.until and matches(flt, witness)

    def _probe_until(self, second: int) -> Generator[Filter, Page, None]:
        """Ask for one event of a second known to hold one: an exclusive relay sends none."""
        page = yield from self._send(
            replace(self._base, since=second, until=second, limit=1), measure=True
        )
        self._cap = replace(self._cap, until_exclusive=not page.events)

    def _send(self, flt: Filter, *, measure: bool = False) -> Generator[Filter, Page, Page]:
        """Propose `flt` unchanged; return the answer once known to be usable; learn the cap.

        `measure` marks a probe, whose events `claim` does not hand on.
        """
        if self._requests == self._policy.max_requests:
            raise _Stop(f"gave up after {self._requests} requests in this window")
        self._requests += 1
        self._measuring = measure
        page = yield flt
        self._measuring = False
        if not page.eose:
            raise _Stop(f"the relay did not finish its answer: {page.detail or 'no reason given'}")
        stray = next((event for event in page.events if not matches(flt, event)), None)
        if stray is not None:
            raise _Stop(f"the relay answered with event {stray.id}, which the request excludes")
        if any(old.created_at < new.created_at for old, new in pairwise(page.events)):
            raise _Stop("the relay sent events out of order, not newest first")
        distinct = len({event.id for event in page.events})
        if distinct > self._cap.floor:
            self._cap = replace(self._cap, floor=distinct)
        return page

    def _forget_above(self, second: int) -> None:
        """Forget the events of seconds above `second`: no request of this window reaches them."""
        for above in [claimed for claimed in self._claimed if claimed > second]:
            del self._claimed[above]

    def _is_short(self, count: int) -> bool:
        return count < min(self._limit, self._cap.floor)

    def _settle(self, second: int, gap_reason: str | None = None) -> None:
        """Settle every second from `second` up; those not settled before form a gap if given."""
        if gap_reason is not None and second < self._frontier:
            self._gaps.append(Gap(second, self._frontier - 1, gap_reason))
        self._frontier = min(self._frontier, second)


def _count(page: Page) -> int:
    """Places the page took within the relay's cap."""
    return len(page.events) + page.unreadable


def _chunks(values: Sequence[_T], size: int) -> list[Sequence[_T]]:
    return [values[start : start + size] for start in range(0, len(values), size)]


def _halves(values: Sequence[_T]) -> list[Sequence[_T]]:
    middle = len(values) // 2
    return [values[:middle], values[middle:]]


def _listed(values: Sequence[int]) -> str:
    shown = ", ".join(str(value) for value in values[:_SHOWN])
    return shown if len(values) <= _SHOWN else f"{shown} and {len(values) - _SHOWN} more"
