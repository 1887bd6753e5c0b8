"""NIP-01 filters: REQ serialisation, parsing of client filters, and matching."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bigbrotr.nostr import Event, Filter, InvalidFilter, matches, parse_event, sign_event

REAL_EVENTS = Path(__file__).parents[1] / "data" / "real_events.jsonl"
SECRET = "7f7ff03d123792d6ac594bfa67bf6d0c0ab55b6b1fdb6249303fe861f1ccba9a"
OTHER = "b" * 64


def note(
    kind: int = 1, created_at: int = 1000, tags: Any = (("e", OTHER), ("t", "nostr"))
) -> Event:
    return sign_event(SECRET, created_at, kind, tags, "hi")


def test_to_dict_is_sorted_and_omits_unset_conditions() -> None:
    flt = Filter(kinds=[7, 1, 1], authors=[OTHER], tags={"t": ["b", "a"], "e": [OTHER]}, limit=10)
    assert flt.to_dict() == {
        "authors": [OTHER],
        "kinds": [1, 7],
        "#e": [OTHER],
        "#t": ["a", "b"],
        "limit": 10,
    }
    assert list(flt.to_dict()) == ["authors", "kinds", "#e", "#t", "limit"]
    assert Filter().to_dict() == {}


def test_from_dict_round_trips() -> None:
    obj = {"ids": [OTHER], "kinds": [0, 3], "#p": [OTHER], "since": 1, "until": 2, "limit": 0}
    flt = Filter.from_dict(obj)
    assert flt.to_dict() == obj
    assert Filter.from_dict(json.loads(json.dumps(flt.to_dict()))) == flt


@pytest.mark.parametrize(
    ("obj", "says"),
    [
        ({"search": "bitcoin"}, "NIP-50"),
        ({"foo": 1}, "unknown filter key 'foo'"),
        ({"#ab": ["x"]}, "unknown filter key '#ab'"),
        ({"#1": ["x"]}, "unknown filter key '#1'"),
        ({"ids": OTHER}, "'ids' must be a list"),
        ({"ids": ["abc"]}, "64 lowercase hex"),
        ({"authors": [OTHER.upper()]}, "64 lowercase hex"),
        ({"kinds": 1}, "'kinds' must be a list"),
        ({"kinds": [True]}, "0..65535"),
        ({"kinds": [70_000]}, "0..65535"),
        ({"kinds": ["1"]}, "0..65535"),
        ({"#e": [1]}, "'#e' must be a list of strings"),
        ({"since": -1}, "'since' must be a non-negative integer"),
        ({"until": 1.5}, "'until' must be a non-negative integer"),
        ({"limit": False}, "'limit' must be a non-negative integer"),
    ],
)
def test_from_dict_refuses_bad_filters(obj: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        Filter.from_dict(obj)
    assert says in str(caught.value)


def test_constructor_refuses_bad_tag_keys_and_string_values() -> None:
    with pytest.raises(InvalidFilter, match="single letter"):
        Filter(tags={"ee": ["x"]})
    with pytest.raises(InvalidFilter, match="collection of strings"):
        Filter(tags={"e": "x"})


def test_filter_is_immutable() -> None:
    flt = Filter(tags={"e": ["x"]})
    with pytest.raises(TypeError):
        flt.tags["p"] = frozenset({"y"})  # type: ignore[index]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (Filter(), True),
        (Filter(kinds=[1, 7]), True),
        (Filter(kinds=[7]), False),
        (Filter(kinds=[]), False),
        (Filter(ids=[OTHER]), False),
        (Filter(authors=[OTHER]), False),
        (Filter(since=1000, until=1000), True),
        (Filter(since=1001), False),
        (Filter(until=999), False),
        (Filter(tags={"e": [OTHER, "x"]}), True),
        (Filter(tags={"e": ["x"]}), False),
        (Filter(tags={"e": [OTHER], "t": ["nostr"]}), True),
        (Filter(tags={"e": [OTHER], "t": ["other"]}), False),
        (Filter(tags={"t": []}), False),
        (Filter(tags={"p": [OTHER]}), False),
        (Filter(tags={"E": [OTHER]}), False),
        (Filter(limit=0), True),
    ],
)
def test_matches(flt: Filter, expected: bool) -> None:
    assert matches(flt, note()) is expected


def test_matches_own_id_and_author_and_ignores_tags_without_value() -> None:
    event = note(tags=[["t"], ["e", OTHER]])
    assert matches(Filter(ids=[event.id], authors=[event.pubkey]), event)
    assert not matches(Filter(tags={"t": [""]}), event)


def test_matches_real_events_consistently_with_a_plain_scan() -> None:
    events = [parse_event(line) for line in REAL_EVENTS.read_bytes().splitlines()]
    pubkey = events[0].pubkey
    flt = Filter(kinds=[1, 7], authors=[pubkey], since=1_711_400_000)
    expected = [
        e
        for e in events
        if e.kind in (1, 7) and e.pubkey == pubkey and e.created_at >= 1_711_400_000
    ]
    assert expected
    assert [e for e in events if matches(flt, e)] == expected
    p_tagged = [e for e in events if any(t[:2] == ("p", pubkey) for t in e.tags)]
    assert [e for e in events if matches(Filter(tags={"p": [pubkey]}), e)] == p_tagged


@given(
    kinds=st.lists(st.integers(0, 65_535), max_size=5),
    since=st.none() | st.integers(0, 2000),
    until=st.none() | st.integers(0, 2000),
    created_at=st.integers(0, 2000),
    kind=st.integers(0, 65_535),
)
def test_matches_agrees_with_definition(
    kinds: list[int], since: int | None, until: int | None, created_at: int, kind: int
) -> None:
    event = note(kind=kind, created_at=created_at)
    flt = Filter(kinds=kinds, since=since, until=until)
    expected = (
        kind in kinds
        and (since is None or created_at >= since)
        and (until is None or created_at <= until)
    )
    assert matches(flt, event) is expected
