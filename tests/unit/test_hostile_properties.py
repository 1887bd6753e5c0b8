"""Hostile input against the two parsers everything a relay sends goes through: the event validator
(`parse_event`, `validate`) and the relay client's message handling (`parse_frame`, and a
`Subscription` reading frames from a socket). Whatever the bytes, they raise nothing but the
documented `InvalidEvent` (or, for frames, end as a message or an `EndReason`), and the verdict on
the same input never changes.

`pytest -m hostile --hypothesis-profile=long` runs these with many more examples.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bigbrotr.nostr import InvalidEvent, RejectReason, parse_event
from connectors.client import (
    ClientLimits,
    EventFrame,
    Garbage,
    RelayMessage,
    parse_frame,
)
from streams.validate import Limits, validate
from tests.support.forgeries import FORGERY_NOW, MAX_CONTENT_BYTES, Forgery, forgeries
from tests.support.scripted_socket import SUB, expected_end, read_script

pytestmark = pytest.mark.hostile

REAL_EVENTS = (Path(__file__).parents[1] / "data" / "real_events.jsonl").read_text().splitlines()
LIMITS = Limits(max_content_bytes=MAX_CONTENT_BYTES)
FORGERIES = forgeries()

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=16,
)


@st.composite
def mutated(draw: st.DrawFn, texts: Sequence[str]) -> str:
    """A real or forged event with a few characters replaced, inserted or deleted."""
    text = draw(st.sampled_from(texts))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 2))
        text = text[:at] + draw(st.text(max_size=3)) + text[at + cut :]
    return text


def deeply_nested(depth: int, opener: str) -> str:
    closer = {"[": "]", '{"a":': "}"}[opener]
    return opener * depth + "0" + closer * depth


any_event_text = (
    st.binary(max_size=300)
    | st.text(max_size=300)
    | mutated(REAL_EVENTS + [forgery.text for forgery in FORGERIES])
    | st.builds(json.dumps, json_values)
    | st.builds(deeply_nested, st.integers(1, 50_000), st.sampled_from(["[", '{"a":']))
)


def verdict(raw: bytes | str) -> tuple[str, str] | str:
    """What the validator makes of `raw`: the valid event's id, or the reason and detail."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    try:
        return validate(data, LIMITS, FORGERY_NOW).id
    except InvalidEvent as exc:
        refused = exc
    assert refused.reason in set(RejectReason)
    assert refused.detail
    return (refused.reason, refused.detail)


@settings(deadline=None)
@given(any_event_text)
def test_the_validator_raises_only_invalid_event_and_judges_the_same_way_twice(
    raw: bytes | str,
) -> None:
    assert verdict(raw) == verdict(raw)


@settings(deadline=None)
@given(any_event_text)
def test_text_and_its_utf8_bytes_parse_alike(raw: bytes | str) -> None:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        return
    outcomes = []
    for given_as in (text, data):
        try:
            outcomes.append(parse_event(given_as))
        except InvalidEvent as exc:
            outcomes.append(exc.reason)
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("forgery", FORGERIES, ids=lambda forgery: forgery.name)
def test_each_forgery_is_rejected_for_its_reason(forgery: Forgery) -> None:
    with pytest.raises(InvalidEvent) as refused:
        validate(forgery.text.encode(), LIMITS, FORGERY_NOW)
    assert refused.value.reason is forgery.reason


@pytest.mark.parametrize("depth", [1_000, 10_000, 1_000_000])
@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_nesting_past_the_recursion_limit_is_bad_json(depth: int, opener: str) -> None:
    with pytest.raises(InvalidEvent) as refused:
        parse_event(deeply_nested(depth, opener))
    assert refused.value.reason is RejectReason.BAD_JSON


def test_real_events_are_valid() -> None:
    """The mutations above start from events the validator accepts, so they test the checks."""
    for line in REAL_EVENTS:
        validate(line.encode(), Limits(), FORGERY_NOW)


# Relay frames

messages = st.one_of(
    st.tuples(st.just("EVENT"), st.sampled_from([SUB, "other"]), json_values),
    st.tuples(
        st.just("EVENT"),
        st.sampled_from([SUB, "other"]),
        st.sampled_from(REAL_EVENTS + [f.text for f in FORGERIES]).map(json.loads),
    ),
    st.tuples(st.sampled_from(["EOSE", "NOTICE", "AUTH"]), st.sampled_from([SUB, "other"])),
    st.tuples(
        st.sampled_from(["CLOSED", "NEG-MSG", "NEG-ERR"]),
        st.sampled_from([SUB, "other"]),
        st.text(max_size=10) | st.just("auth-required: log in"),
    ),
    st.tuples(st.just("OK"), st.text(max_size=64), st.booleans(), st.text(max_size=10)),
    st.lists(json_values, max_size=4).map(tuple),
).map(lambda items: json.dumps(list(items)))


@st.composite
def frames(draw: st.DrawFn) -> str | bytes:
    """A relay message, one cut short or mangled, or anything at all."""
    choice = draw(st.integers(0, 4))
    if choice == 0:
        return draw(messages)
    if choice == 1:
        return draw(mutated([draw(messages)]))
    if choice == 2:
        return draw(st.builds(deeply_nested, st.integers(1, 50_000), st.sampled_from(["["])))
    if choice == 3:
        return draw(st.binary(max_size=40))
    return draw(st.text(max_size=200))


def frame_verdict(frame: str | bytes) -> RelayMessage:
    message = parse_frame(frame)
    assert isinstance(message, RelayMessage)
    if isinstance(message, EventFrame):
        assert isinstance(frame, str)
        assert message.text in frame
        assert type(json.loads(message.text)) is dict
        assert json.loads(message.text).keys() == message.fields.keys()
    if isinstance(message, Garbage):
        assert message.detail
    return message


@settings(deadline=None)
@given(frames())
def test_any_frame_is_a_message_or_garbage_the_same_way_twice(frame: str | bytes) -> None:
    assert frame_verdict(frame) == frame_verdict(frame)


@settings(deadline=None)
@given(
    st.lists(frames(), max_size=12),
    st.integers(0, 3),
    st.integers(1, 4),
)
async def test_a_subscription_ends_with_a_reason_whatever_the_relay_sends(
    script: list[str | bytes], max_garbage: int, max_events: int
) -> None:
    limits = ClientLimits(max_garbage_frames=max_garbage, max_events=max_events)
    assert await read_script(script, limits) == expected_end(script, limits)
