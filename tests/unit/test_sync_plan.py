"""History sync planning against a simulated relay: completeness is claimed only when true.

The fake relay follows the model the planner's proofs assume (newest first, any order within a
second, at most min(limit, cap) events, `until` read inclusively as NIP-01 says or exclusively as
nostr-relay does), and is as unhelpful as that model allows: its order within a second is either
fixed, so a cut second returns the same events forever, or shuffled.

Request counts: beyond one request per second that holds events, a window may cost one request
for all time (to learn the relay's silent cap), one to learn how the relay reads `until` (asking
again after an answer for the wrong bound, or one event of a second known to hold one), and the
last page, which proves the rest empty.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bigbrotr.avro.schemas import default_schemas_dir
from bigbrotr.codec import Codec
from bigbrotr.errors import CodecError
from bigbrotr.nostr import Event, Filter, matches
from connectors.sync import (
    NOT_PULLED,
    Coverage,
    Gap,
    Page,
    RelayCap,
    SyncPolicy,
    WindowPlanner,
    coverage_from_record,
    cursor_record,
)

SINCE, UNTIL = 1000, 2000
BURST = 1500


def author(number: int) -> str:
    return f"{number + 1:064x}"


@dataclass
class FakeRelay:
    """Answers filters like a relay capped at `cap` (None: only the request's limit)."""

    events: list[Event]
    cap: int | None = None
    shuffle: random.Random | None = None
    fail_at: int | None = None
    until_exclusive: bool = False
    asked: list[Filter] = field(default_factory=list)

    def answer(self, flt: Filter) -> Page:
        self.asked.append(flt)
        if len(self.asked) == self.fail_at:
            return Page([], eose=False, detail="timed out after 10 s")
        hits = sorted((event for event in self.events if self.selects(flt, event)), key=_event_id)
        if self.shuffle is not None:
            self.shuffle.shuffle(hits)
        hits.sort(key=lambda event: event.created_at, reverse=True)
        assert flt.limit is not None
        size = flt.limit if self.cap is None else min(flt.limit, self.cap)
        return Page(hits[:size])

    def selects(self, flt: Filter, event: Event) -> bool:
        if self.until_exclusive and flt.until is not None and event.created_at == flt.until:
            return False
        return matches(flt, event)


def _event_id(event: Event) -> str:
    return event.id


class Events:
    """Builds events with unique ids, oldest ids first."""

    def __init__(self) -> None:
        self.count = 0

    def make(self, created_at: int, kind: int = 1, by: int = 0) -> Event:
        self.count += 1
        return Event(
            id=f"{self.count:064x}",
            pubkey=author(by),
            created_at=created_at,
            kind=kind,
            tags=(),
            content="",
            sig="0" * 128,
        )

    def many(self, seconds: Iterable[int], kind: int = 1, by: int = 0) -> list[Event]:
        return [self.make(second, kind, by) for second in seconds]


@dataclass
class Run:
    planner: WindowPlanner
    fetched: set[str]


def pull(
    relay: FakeRelay,
    since: int = SINCE,
    until: int = UNTIL,
    base: Filter | None = None,
    *,
    policy: SyncPolicy | None = None,
    max_limit: int | None = None,
    cap: RelayCap | None = None,
) -> Run:
    """Drive a planner to the end, checking after every answer that what it settles is pulled.

    Only the events the planner claims count as fetched, as only those are published; none may
    be claimed twice.
    """
    planner = WindowPlanner(since, until, base=base, policy=policy, max_limit=max_limit, cap=cap)
    fetched: set[str] = set()
    for _ in range(100_000):
        flt = planner.next_request()
        if flt is None:
            return Run(planner, fetched)
        page = relay.answer(flt)
        for event in page.events:
            if planner.claim(event):
                assert event.id not in fetched, f"event {event.id} was claimed twice"
                # One second above is asked only while the relay's reading of `until` is unknown.
                assert since <= event.created_at <= until + 1, "a probe's answer was claimed"
                fetched.add(event.id)
        planner.record(page)
        assert_settled_is_pulled(planner.coverage, relay, fetched, base)
    raise AssertionError("the planner never finished")


def in_window(relay: FakeRelay, since: int, until: int, base: Filter | None) -> list[Event]:
    return [
        event
        for event in relay.events
        if since <= event.created_at <= until and (base is None or matches(base, event))
    ]


def in_gap(coverage: Coverage, second: int) -> bool:
    return any(gap.since <= second <= gap.until for gap in coverage.gaps)


def assert_settled_is_pulled(
    coverage: Coverage, relay: FakeRelay, fetched: set[str], base: Filter | None
) -> None:
    span = coverage.span
    if span is None:
        return
    for event in in_window(relay, *span, base):
        assert event.id in fetched or in_gap(coverage, event.created_at), (
            f"event at {event.created_at} is in the settled range {span}, outside every gap, "
            "but was never fetched"
        )


def assert_sound(
    run: Run, relay: FakeRelay, since: int = SINCE, until: int = UNTIL, base: Filter | None = None
) -> list[Event]:
    """The whole window is settled and every event not pulled is in a gap; returns those events."""
    coverage = run.planner.coverage
    assert run.planner.done
    assert coverage.span == (since, until)
    missed = [
        event for event in in_window(relay, since, until, base) if event.id not in run.fetched
    ]
    assert all(in_gap(coverage, event.created_at) for event in missed)
    if not coverage.gaps:
        assert not missed
    return missed


# Scenarios: three kinds of cap, each with the distributions the issue names.

CAPS = {
    # page_size, silent cap, NIP-11 max_limit -> effective cap 4, 4, 10
    "silent cap below the request": (10, 4, None),
    "NIP-11 max_limit": (10, 4, 4),
    "no cap": (10, None, None),
}


def effective_cap(case: str) -> int:
    page_size, cap, _ = CAPS[case]
    return page_size if cap is None else min(page_size, cap)


def background(events: Events) -> list[Event]:
    """Older and newer history outside the window, as any real relay has."""
    return events.many(range(0, SINCE, 37)) + events.many(range(UNTIL + 1, UNTIL + 300, 29))


def uniform(events: Events, cap: int) -> list[Event]:
    # 300 events over the window, two or three in many seconds, never `cap` in one (cap >= 4)
    return events.many(SINCE + (index * 7) % 1001 for index in range(300))


def one_second(events: Events, cap: int) -> list[Event]:
    return events.many([BURST] * (cap - 1))


def burst(events: Events, cap: int) -> list[Event]:
    return events.many(range(SINCE, UNTIL + 1, 50)) + events.many([BURST] * (2 * cap), by=1)


def empty(events: Events, cap: int) -> list[Event]:
    return []


def single(events: Events, cap: int) -> list[Event]:
    return [events.make(BURST)]


DISTRIBUTIONS: dict[str, Callable[[Events, int], list[Event]]] = {
    "uniform": uniform,
    "all in one second": one_second,
    "burst of 2x cap in one second": burst,
    "empty window": empty,
    "single event": single,
}


READINGS = {"until inclusive": False, "until exclusive (nostr-relay)": True}


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("case", CAPS)
@pytest.mark.parametrize("shape", DISTRIBUTIONS)
def test_scenarios(case: str, shape: str, reading: str) -> None:
    page_size, cap, max_limit = CAPS[case]
    events = Events()
    window = DISTRIBUTIONS[shape](events, effective_cap(case))
    relay = FakeRelay(background(events) + window, cap=cap, until_exclusive=READINGS[reading])
    policy = SyncPolicy(page_size=page_size)
    run = pull(relay, policy=policy, max_limit=max_limit)
    missed = assert_sound(run, relay)
    seconds = {event.created_at for event in window}
    if shape == "burst of 2x cap in one second":
        (gap,) = run.planner.coverage.gaps
        assert (gap.since, gap.until) == (BURST, BURST)
        assert "more events in this second than it returns per request" in gap.reason
        assert {event.created_at for event in missed} == {BURST}
        assert run.planner.requests <= len(seconds) + 3 + policy.max_requests_per_second
    else:
        assert run.planner.coverage.gaps == ()
        assert not missed
        assert run.planner.requests <= len(seconds) + 3
    assert run.planner.cap.until_exclusive in (None, relay.until_exclusive)
    if shape == "empty window":
        # One request for ..UNTIL+1, which both readings answer for ..UNTIL; the inclusive relay
        # adds the background's event at UNTIL+1, so it is asked again with the real bound.
        assert run.planner.requests == (1 if relay.until_exclusive else 2)


def test_a_page_that_brings_nothing_new_proves_nothing() -> None:
    """Capped at 3, the relay answers its 10 events of one second with the same 3 every time."""
    events = Events()
    crowded = events.many([BURST] * 10)
    below = events.many([BURST - 1, BURST - 2])
    relay = FakeRelay(background(events) + crowded + below, cap=3)
    run = pull(relay, policy=SyncPolicy(page_size=10))
    missed = assert_sound(run, relay)
    assert len(missed) == 7
    asked_for_burst = [flt for flt in relay.asked if flt.until == BURST]
    assert len(asked_for_burst) >= 2
    (gap,) = run.planner.coverage.gaps
    assert (gap.since, gap.until) == (BURST, BURST)
    assert f"kind 1 by {author(0)}" in gap.reason
    assert {event.id for event in below} <= run.fetched


def test_base_kinds_let_a_crowded_second_be_proven() -> None:
    events = Events()
    crowded = [events.make(BURST, kind, by) for kind in (1, 7, 9) for by in range(3)]
    relay = FakeRelay(background(events) + crowded, cap=4)
    base = Filter(kinds=[1, 7, 9])
    run = pull(relay, base=base, policy=SyncPolicy(page_size=10))
    assert not assert_sound(run, relay, base=base)
    assert run.planner.coverage.gaps == ()
    assert any(flt.kinds == frozenset({7}) for flt in relay.asked)


def test_base_authors_let_a_crowded_kind_be_proven() -> None:
    events = Events()
    crowded = [events.make(BURST, 1, by) for by in range(4) for _ in range(3)]
    relay = FakeRelay(background(events) + crowded, cap=4)
    base = Filter(kinds=[1], authors=[author(by) for by in range(4)])
    run = pull(relay, base=base, policy=SyncPolicy(page_size=10, max_filter_values=2))
    assert not assert_sound(run, relay, base=base)
    assert run.planner.coverage.gaps == ()


def test_splitting_pulls_events_the_cap_hides_even_when_the_second_stays_a_gap() -> None:
    events = Events()
    shown = events.many([BURST] * 4, kind=1)
    hidden = events.many([BURST] * 3, kind=7)  # later ids: the fixed order puts them last
    relay = FakeRelay(background(events) + shown + hidden, cap=4)
    run = pull(relay, policy=SyncPolicy(page_size=10))
    assert_sound(run, relay)
    assert {event.id for event in hidden} <= run.fetched
    (gap,) = run.planner.coverage.gaps
    assert "kinds other than 0, 1, 3, 5, 6, 7 and 6 more" in gap.reason


def test_a_relay_holding_one_second_only_cannot_be_proven_without_a_known_cap() -> None:
    """One event, or a cap of 1 hiding a second event of the same second: the answers are equal."""
    events = Events()
    relay = FakeRelay([events.make(BURST)])
    run = pull(relay)
    assert_sound(run, relay)
    assert [(gap.since, gap.until) for gap in run.planner.coverage.gaps] == [(BURST, BURST)]
    known = pull(relay, cap=RelayCap(floor=2, probed=True))
    assert known.planner.coverage.gaps == ()
    assert known.planner.requests == 1


def test_the_cap_is_learned_and_carried_to_the_next_window() -> None:
    events = Events()
    relay = FakeRelay(background(events) + events.many(range(SINCE, UNTIL, 100)), cap=4)
    first = pull(relay, policy=SyncPolicy(page_size=10), until=1499)
    assert first.planner.cap == RelayCap(floor=4, probed=True, until_exclusive=False)
    fresh = pull(relay, since=1500, policy=SyncPolicy(page_size=10))
    carried = pull(relay, since=1500, policy=SyncPolicy(page_size=10), cap=first.planner.cap)
    # Carried, the cap saves the request for all time and the repeat of the first page, which
    # asked for ..UNTIL+1 and got the background's event there.
    assert carried.planner.requests == fresh.planner.requests - 2
    window = {event.id for event in in_window(relay, 1500, UNTIL, None)}
    assert window <= carried.fetched
    assert window <= fresh.fetched


def test_unreadable_events_count_against_the_cap() -> None:
    events = Events()
    answer = events.many([1900, 1800, 1700, 1600])
    cap = RelayCap(floor=5, probed=True)
    clean = WindowPlanner(SINCE, UNTIL, cap=cap)
    clean.record(Page(answer))
    assert clean.done
    assert clean.coverage == Coverage(SINCE, UNTIL)
    cut = WindowPlanner(SINCE, UNTIL, cap=cap)
    cut.record(Page(answer, unreadable=1))
    assert cut.next_request() == Filter(since=SINCE, until=1600, limit=500)
    assert cut.coverage == Coverage(1601, UNTIL)


def test_a_failed_answer_settles_the_rest_as_a_gap() -> None:
    events = Events()
    relay = FakeRelay(background(events) + events.many(range(SINCE, UNTIL, 10)), fail_at=3)
    run = pull(relay, policy=SyncPolicy(page_size=10))
    assert_sound(run, relay)
    (gap,) = run.planner.coverage.gaps
    assert gap.since == SINCE
    assert gap.until < UNTIL
    assert gap.reason == "the relay did not finish its answer: timed out after 10 s"
    assert run.planner.requests == 3


def test_an_answer_outside_the_filter_settles_the_rest_as_a_gap() -> None:
    events = Events()
    planner = WindowPlanner(SINCE, UNTIL)
    stray = events.make(UNTIL + 5)
    planner.record(Page([events.make(1500), stray]))
    assert planner.done
    assert planner.coverage.gaps == (
        Gap(SINCE, UNTIL, f"the relay answered with event {stray.id}, which the request excludes"),
    )


def test_an_answer_oldest_first_settles_the_rest_as_a_gap() -> None:
    events = Events()
    planner = WindowPlanner(SINCE, UNTIL)
    planner.record(Page([events.make(1200), events.make(1200), events.make(1300)]))
    assert planner.coverage.gaps == (
        Gap(SINCE, UNTIL, "the relay sent events out of order, not newest first"),
    )


def test_only_unreadable_events_settle_the_rest_as_a_gap() -> None:
    planner = WindowPlanner(SINCE, UNTIL, cap=RelayCap(floor=3, probed=True))
    planner.record(Page([], unreadable=5))
    assert planner.coverage.gaps == (
        Gap(SINCE, UNTIL, "the relay sent only events that could not be parsed"),
    )


def test_the_request_budget_ends_the_window_in_a_gap() -> None:
    events = Events()
    relay = FakeRelay(background(events) + events.many(range(SINCE, UNTIL, 3)))
    run = pull(relay, policy=SyncPolicy(page_size=10, max_requests=3))
    assert_sound(run, relay)
    assert run.planner.requests == 3
    (gap,) = run.planner.coverage.gaps
    assert gap.reason == "gave up after 3 requests in this window"


def test_the_budget_of_one_second_ends_that_second_only() -> None:
    events = Events()
    below = events.many(range(SINCE, BURST, 20))
    relay = FakeRelay(background(events) + below + events.many([BURST] * 20), cap=4)
    run = pull(relay, policy=SyncPolicy(page_size=10, max_requests_per_second=1))
    assert_sound(run, relay)
    (gap,) = run.planner.coverage.gaps
    assert (gap.since, gap.until) == (BURST, BURST)
    assert "the rest after 1 requests" in gap.reason
    assert {event.id for event in below} <= run.fetched


def test_progress_resumes_after_a_crash_and_catches_up_with_new_events() -> None:
    events = Events()
    relay = FakeRelay(background(events) + events.many(range(SINCE, UNTIL + 1, 5)), cap=4)
    policy = SyncPolicy(page_size=10)
    crashed = WindowPlanner(SINCE, UNTIL, policy=policy)
    fetched: set[str] = set()
    for _ in range(30):
        flt = crashed.next_request()
        assert flt is not None
        page = relay.answer(flt)
        fetched.update(event.id for event in page.events)
        crashed.record(page)
    cursor = coverage_from_record(
        cursor_record("wss://r.example", crashed.coverage, updated_at_ms=1)
    )
    assert cursor.span is not None
    assert SINCE < cursor.span[0] <= UNTIL
    now = UNTIL + 400
    late = events.many(range(UNTIL, now + 1, 40))
    relay.events.extend(late)
    windows = cursor.next_windows(now, oldest=SINCE)
    assert windows == [(UNTIL, now), (SINCE, cursor.span[0] - 1)]
    for since, until in windows:
        run = pull(relay, since=since, until=until, policy=policy, cap=crashed.cap)
        fetched |= run.fetched
        cursor = cursor.merge(run.planner.coverage)
    assert cursor == Coverage(SINCE, now)
    assert {event.id for event in in_window(relay, SINCE, now, None)} <= fetched


def test_misuse_is_refused() -> None:
    with pytest.raises(ValueError, match="need 0 <= since <= until"):
        WindowPlanner(5, 4)
    with pytest.raises(ValueError, match="leave since, until and limit"):
        WindowPlanner(0, 4, base=Filter(limit=3))
    with pytest.raises(ValueError, match="page_size must be at least 1"):
        SyncPolicy(page_size=0)
    planner = WindowPlanner(0, 4)
    planner.record(Page([]))
    assert planner.done
    assert planner.coverage == Coverage(0, 4)
    with pytest.raises(RuntimeError, match="already settled"):
        planner.record(Page([]))


def test_max_limit_sizes_pages_and_a_nonsense_one_is_ignored() -> None:
    """Until the relay's reading of `until` is known, the first page asks for one second more."""
    assert WindowPlanner(0, 9, max_limit=20).next_request() == Filter(since=0, until=10, limit=20)
    assert WindowPlanner(0, 9, max_limit=0).next_request() == Filter(since=0, until=10, limit=500)
    base = Filter(kinds=[1])
    planner = WindowPlanner(0, 9, base=base, policy=SyncPolicy(page_size=50), max_limit=900)
    assert planner.next_request() == Filter(kinds=[1], since=0, until=10, limit=50)
    inclusive = RelayCap(until_exclusive=False)
    assert WindowPlanner(0, 9, cap=inclusive).next_request() == Filter(since=0, until=9, limit=500)


def sent_untils(reading_exclusive: bool) -> tuple[Run, list[int | None]]:
    events = Events()
    relay = FakeRelay(
        events.many([2000, 1500, 1500, 1200, 1200]), until_exclusive=reading_exclusive
    )
    run = pull(relay, policy=SyncPolicy(page_size=3))
    assert not assert_sound(run, relay)
    assert run.planner.coverage.gaps == ()
    return run, [flt.until for flt in relay.asked]


def test_how_a_relay_reads_until_is_learned_from_a_second_known_to_hold_events() -> None:
    """The first page ends at 1500, so the next asks ..1500: an exclusive relay sends no 1500.

    Then the same page is asked for ..1501, and every later page one second above its bound.
    """
    exclusive, asked = sent_untils(reading_exclusive=True)
    assert asked == [UNTIL + 1, 1500, 1501, 1201]
    assert exclusive.planner.cap.until_exclusive is True
    inclusive, asked = sent_untils(reading_exclusive=False)
    assert asked == [UNTIL + 1, 1500, 1200]
    assert inclusive.planner.cap.until_exclusive is False


@pytest.mark.parametrize("exclusive", [False, True])
def test_below_a_crowded_top_second_one_probe_learns_the_reading(exclusive: bool) -> None:
    """A crowded top second is split with `until` one above (the reading is not known yet); the
    second below it was never seen, so one event of the crowded second is asked for first.
    """
    events = Events()
    crowded = [events.make(UNTIL, kind, by) for kind in (1, 7) for by in range(3)]
    below = events.many([UNTIL - 1] * 2 + [UNTIL - 2])
    relay = FakeRelay(crowded + below, cap=4, until_exclusive=exclusive)
    base = Filter(kinds=[1, 7], authors=[author(by) for by in range(3)])
    run = pull(relay, base=base, policy=SyncPolicy(page_size=10))
    assert not assert_sound(run, relay, base=base)
    assert run.planner.coverage.gaps == ()
    probes = [flt for flt in relay.asked if flt.limit == 1]
    assert [(flt.since, flt.until) for flt in probes] == [(UNTIL, UNTIL)]
    assert run.planner.cap.until_exclusive is exclusive


def test_a_relay_wrongly_believed_exclusive_loses_nothing() -> None:
    """An event above the bound shows the relay inclusive; that page is asked again."""
    events = Events()
    relay = FakeRelay([*events.many(range(SINCE, UNTIL + 1, 10)), events.make(UNTIL + 1)], cap=4)
    run = pull(relay, policy=SyncPolicy(page_size=10), cap=RelayCap(until_exclusive=True))
    assert not assert_sound(run, relay)
    assert run.planner.coverage.gaps == ()
    assert run.planner.cap.until_exclusive is False
    assert [flt.until for flt in relay.asked[:2]] == [UNTIL + 1, UNTIL]


def test_a_second_asked_again_above_the_bound_is_not_claimed_again() -> None:
    """Believed exclusive, an inclusive relay is asked one second above the second page's bound
    and sends again an event the first page brought: it is not claimed twice.
    """
    events = Events()
    relay = FakeRelay(events.many([UNTIL, UNTIL - 4, UNTIL - 5, UNTIL - 5, UNTIL - 9]))
    run = pull(relay, policy=SyncPolicy(page_size=3), cap=RelayCap(until_exclusive=True))
    assert not assert_sound(run, relay)
    assert run.fetched == {event.id for event in relay.events}
    assert [flt.until for flt in relay.asked[:3]] == [UNTIL + 1, UNTIL - 4, UNTIL - 5]


# Generated relays: contents, caps, page sizes, base filters and orders.


@dataclass
class Case:
    relay: FakeRelay
    since: int
    until: int
    base: Filter | None
    policy: SyncPolicy
    max_limit: int | None
    effective_cap: int


KINDS = (1, 7, 9)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    events = Events()
    since = draw(st.integers(0, 6))
    until = since + draw(st.integers(0, 20))
    spread = st.tuples(st.integers(0, 30), st.sampled_from(KINDS), st.integers(0, 3))
    contents = [events.make(*item) for item in draw(st.lists(spread, max_size=50))]
    for second, size, kind in draw(
        st.lists(
            st.tuples(st.integers(0, 30), st.integers(1, 30), st.sampled_from(KINDS)), max_size=3
        )
    ):
        contents += [
            events.make(second, kind, by)
            for by in draw(st.lists(st.integers(0, 3), min_size=size, max_size=size))
        ]
    page_size = draw(st.integers(1, 12))
    cap = draw(st.none() | st.integers(1, 12))
    max_limit = draw(st.none() | st.integers(1, 12))
    limit = page_size if max_limit is None else min(page_size, max_limit)
    shuffle = draw(st.none() | st.randoms(use_true_random=False))
    base = draw(
        st.sampled_from(
            [
                None,
                Filter(kinds=[1, 7]),
                Filter(kinds=KINDS, authors=[author(by) for by in range(4)]),
            ]
        )
    )
    policy = SyncPolicy(
        page_size=page_size,
        max_requests_per_second=500,
        split_kinds=(1, 7),
        max_filter_values=draw(st.integers(1, 4)),
    )
    relay = FakeRelay(contents, cap=cap, shuffle=shuffle, until_exclusive=draw(st.booleans()))
    return Case(
        relay, since, until, base, policy, max_limit, limit if cap is None else min(limit, cap)
    )


def provable(case: Case) -> bool:
    """Whether the planner must prove the window: no part it can split down to is over the cap."""
    everything = [
        event for event in case.relay.events if case.base is None or matches(case.base, event)
    ]
    if len({event.created_at for event in everything}) == 1:
        return False
    window = in_window(case.relay, case.since, case.until, case.base)
    if case.base is None or case.base.kinds is None:
        parts: Counter[object] = Counter(event.created_at for event in window)
    elif case.base.authors is None:
        parts = Counter((event.created_at, event.kind) for event in window)
    else:
        parts = Counter((event.created_at, event.kind, event.pubkey) for event in window)
    return all(size < case.effective_cap for size in parts.values())


@settings(max_examples=400, deadline=None)
@given(cases())
def test_generated_relays(case: Case) -> None:
    run = pull(
        case.relay,
        case.since,
        case.until,
        case.base,
        policy=case.policy,
        max_limit=case.max_limit,
    )
    assert_sound(run, case.relay, case.since, case.until, case.base)
    window = in_window(case.relay, case.since, case.until, case.base)
    seconds = len({event.created_at for event in window})
    per_second = case.policy.max_requests_per_second
    assert run.planner.requests <= min(case.policy.max_requests, seconds * (per_second + 1) + 3)
    assert run.planner.cap.until_exclusive in (None, case.relay.until_exclusive)
    if provable(case):
        assert run.planner.coverage.gaps == ()
    if case.base is None or case.base.kinds is None:
        crowded = Counter(event.created_at for event in window)
        if (
            all(size < case.effective_cap for size in crowded.values())
            and not run.planner.coverage.gaps
        ):
            assert run.planner.requests <= seconds + 3


# The cursor record and merging progress.


def test_cursor_record_round_trips_through_the_codec() -> None:
    coverage = Coverage(100, 900, (Gap(100, 120, "timed out"), Gap(500, 500, "crowded second")))
    record = cursor_record("wss://relay.example", coverage, updated_at_ms=1_700_000_000_123)
    schema = json.loads((default_schemas_dir() / "SyncCursor.avsc").read_text())
    assert list(record) == [field["name"] for field in schema["fields"]]
    codec = Codec()
    decoded = codec.decode("SyncCursor", codec.encode("SyncCursor", record))
    assert decoded["updated_at"] == datetime.fromtimestamp(1_700_000_000.123, UTC)
    assert decoded["method"] == "bisection"
    assert coverage_from_record(decoded) == coverage
    empty = cursor_record("wss://relay.example", Coverage(), updated_at_ms=0)
    assert (
        coverage_from_record(codec.decode("SyncCursor", codec.encode("SyncCursor", empty)))
        == Coverage()
    )


@pytest.mark.parametrize(
    ("since", "until", "gaps", "says"),
    [
        (None, 5, [], "both be set, or both be null"),
        (None, None, [{"since": 1, "until": 1, "reason": "x"}], "both be set, or both be null"),
        (9, 5, [], "complete_since 9 is after complete_until 5"),
        (0, 5, [{"since": 4, "until": 6, "reason": "x"}], "gap 4..6 is not inside 0..5"),
        (
            0,
            9,
            [{"since": 4, "until": 6, "reason": "x"}, {"since": 5, "until": 7, "reason": "y"}],
            "gap 5..7 is not inside 0..9, after the previous gap",
        ),
    ],
)
def test_an_inconsistent_cursor_is_refused(
    since: int | None, until: int | None, gaps: list[dict[str, object]], says: str
) -> None:
    record = {
        "relay_url": "wss://r.example",
        "complete_since": since,
        "complete_until": until,
        "gaps": gaps,
    }
    with pytest.raises(
        CodecError, match=re.escape("the sync cursor of wss://r.example is inconsistent")
    ) as info:
        coverage_from_record(record)
    assert says in str(info.value)
    assert "delete its record from the sync-cursors topic" in str(info.value)


def test_next_windows() -> None:
    assert Coverage().next_windows(50) == [(0, 50)]
    assert Coverage().next_windows(50, oldest=60) == []
    coverage = Coverage(10, 40, (Gap(12, 13, "a"), Gap(30, 30, "b")))
    assert coverage.next_windows(50, oldest=5) == [(40, 50), (30, 30), (12, 13), (5, 9)]
    assert coverage.next_windows(50, oldest=10) == [(40, 50), (30, 30), (12, 13)]


@st.composite
def coverages(draw: st.DrawFn, reasons: str) -> Coverage:
    if draw(st.booleans()) and draw(st.booleans()):
        return Coverage()
    since = draw(st.integers(0, 30))
    until = since + draw(st.integers(0, 30))
    cuts = sorted(draw(st.sets(st.integers(since, until), max_size=8)))
    gaps = []
    for low, high in zip(cuts[::2], cuts[1::2], strict=False):
        if draw(st.booleans()):
            gaps.append(Gap(low, high, draw(st.sampled_from(reasons))))
    return Coverage(since, until, tuple(gaps))


def seconds_of(coverage: Coverage) -> dict[int, str | None]:
    """Each settled second: None when pulled, else the reason of its gap."""
    span = coverage.span
    if span is None:
        return {}
    result: dict[int, str | None] = dict.fromkeys(range(span[0], span[1] + 1))
    for gap in coverage.gaps:
        result.update(dict.fromkeys(range(gap.since, gap.until + 1), gap.reason))
    return result


@given(coverages("ab"), coverages("xy"))
def test_merge_pulls_a_second_if_either_run_did(older: Coverage, newer: Coverage) -> None:
    merged = older.merge(newer)
    old, new, got = seconds_of(older), seconds_of(newer), seconds_of(merged)
    if not old or not new:
        assert merged == (newer if new else older)
        return
    assert set(got) == set(range(min(old | new), max(old | new) + 1))
    for second, reason in got.items():
        if old.get(second, NOT_PULLED) is None or new.get(second, NOT_PULLED) is None:
            assert reason is None
        else:
            expected = new.get(second) or old.get(second) or NOT_PULLED
            assert reason == expected
    for before, after in zip(merged.gaps, merged.gaps[1:], strict=False):
        assert before.until + 1 < after.since or before.reason != after.reason
