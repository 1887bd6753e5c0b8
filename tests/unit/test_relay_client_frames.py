"""Relay message parsing: EVENT objects come back as the exact text; bad frames are garbage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.client import (
    AuthFrame,
    ClosedFrame,
    EoseFrame,
    EventFrame,
    Garbage,
    NegErrFrame,
    NegMsgFrame,
    NoticeFrame,
    OkFrame,
    parse_frame,
)

REAL_EVENTS = (Path(__file__).parents[1] / "data" / "real_events.jsonl").read_text().splitlines()

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
event_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=8)
whitespace = st.text(alphabet=" \t\n\r", max_size=3)


@st.composite
def event_texts(draw: st.DrawFn) -> str:
    """Any JSON object text, spelled as a relay might: any separators, escaping, indentation."""
    if draw(st.booleans()):
        return draw(st.sampled_from(REAL_EVENTS))
    return json.dumps(
        draw(event_objects),
        ensure_ascii=draw(st.booleans()),
        indent=draw(st.none() | st.integers(0, 2)),
        separators=draw(st.sampled_from([None, (",", ":"), (", ", ": "), (" ,", " :")])),
        sort_keys=draw(st.booleans()),
    )


@st.composite
def event_frames(draw: st.DrawFn) -> tuple[str, str, str]:
    """(frame, subscription id, event text) with whitespace anywhere JSON allows it."""
    sub = draw(st.text(max_size=20))
    text = draw(event_texts())
    parts = ["[", '"EVENT"', ",", json.dumps(sub, ensure_ascii=draw(st.booleans())), ",", text]
    frame = "".join(draw(whitespace) + part for part in parts) + draw(whitespace) + "]"
    return frame + draw(whitespace), sub, text


@given(event_frames())
def test_event_text_is_sliced_exactly(case: tuple[str, str, str]) -> None:
    frame, sub, text = case
    message = parse_frame(frame)
    assert isinstance(message, EventFrame)
    assert message.text == text
    assert message.subscription_id == sub


@given(event_frames(), st.data())
def test_a_truncated_event_frame_is_garbage(
    case: tuple[str, str, str], data: st.DataObject
) -> None:
    frame = case[0].rstrip(" \t\n\r")
    cut = data.draw(st.integers(0, len(frame) - 1))
    assert isinstance(parse_frame(frame[:cut]), Garbage)


@given(event_frames(), json_values)
def test_an_event_frame_with_a_fourth_element_is_garbage(
    case: tuple[str, str, str], extra: Any
) -> None:
    frame = case[0].rstrip(" \t\n\r")
    assert isinstance(parse_frame(f"{frame[:-1]},{json.dumps(extra)}]"), Garbage)


@given(st.text(max_size=20), json_values.filter(lambda value: not isinstance(value, dict)))
def test_an_event_that_is_not_an_object_is_garbage(sub: str, value: Any) -> None:
    assert isinstance(parse_frame(json.dumps(["EVENT", sub, value])), Garbage)


@given(st.text(max_size=200) | st.binary(max_size=50))
def test_any_input_parses_to_a_message_without_raising(frame: str | bytes) -> None:
    message = parse_frame(frame)
    if isinstance(message, EventFrame):
        assert isinstance(frame, str)
        outer = json.loads(frame)
        assert outer[:2] == ["EVENT", message.subscription_id]
        assert json.loads(message.text) == outer[2]


def test_claimed_id_and_created_at_are_read_only_when_well_typed() -> None:
    good = parse_frame('["EVENT","s",{"id":"abc","created_at":17}]')
    odd = parse_frame('["EVENT","s",{"id":5,"created_at":"17"}]')
    assert isinstance(good, EventFrame)
    assert (good.event_id, good.created_at) == ("abc", 17)
    assert isinstance(odd, EventFrame)
    assert (odd.event_id, odd.created_at) == (None, None)


def test_an_event_frame_carries_its_decoded_object() -> None:
    message = parse_frame('["EVENT","s",{"id":"abc","tags":[["t","x"]],"kind":1}]')
    assert isinstance(message, EventFrame)
    assert message.fields == {"id": "abc", "tags": [["t", "x"]], "kind": 1}


@pytest.mark.parametrize(
    "frame",
    [
        '["EVENT","s",{"id":"abc","content":"\\ud800"}]',
        '["EVENT","s",{"id":"abc","created_at":1e400}]',
        '["\\u0045VENT","s",{"id":"abc"}]',
        '["EVENT","\\"s\\"",{"id":"abc"}]',
    ],
)
def test_what_the_fast_path_leaves_is_read_by_the_strict_scanner(frame: str) -> None:
    message = parse_frame(frame)
    outer = json.loads(frame)
    assert isinstance(message, EventFrame)
    assert (message.subscription_id, message.event_id) == (outer[1], "abc")
    assert json.loads(message.text) == message.fields == outer[2]


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ('["EOSE","sub"]', EoseFrame("sub")),
        ('["CLOSED","sub","auth-required: log in"]', ClosedFrame("sub", "auth-required: log in")),
        ('["CLOSED","sub"]', ClosedFrame("sub", "")),
        ('["NOTICE","hello"]', NoticeFrame("hello")),
        ('["AUTH","challenge-text"]', AuthFrame("challenge-text")),
        ('["OK","abc",true,""]', OkFrame("abc", True, "")),
        ('["OK","abc",false,"blocked: no"]', OkFrame("abc", False, "blocked: no")),
        ('["OK","abc",false]', OkFrame("abc", False, "")),
        (' [ "EOSE" , "sub" , "extra" ] ', EoseFrame("sub")),
    ],
)
def test_control_messages(frame: str, expected: object) -> None:
    assert parse_frame(frame) == expected


@pytest.mark.parametrize(
    ("frame", "because"),
    [
        ("not json", "not a JSON array"),
        ('{"a":1}', "not a JSON array"),
        ("[]", "no message type"),
        ("[1,2]", "no message type"),
        ('["COUNT","sub",{"count":1}]', "unknown message type"),
        ('["EOSE"]', "malformed EOSE"),
        ('["EOSE",5]', "malformed EOSE"),
        ('["CLOSED","sub",0]', "malformed CLOSED"),
        ('["OK","abc","true",""]', "malformed OK"),
        ('["OK","abc",true,5]', "malformed OK"),
        ('["EVENT","sub"]', "malformed EVENT"),
        ('["EVENT",1,{}]', "malformed EVENT"),
        ('["EVENT","sub",{"a":NaN}]', "NaN is not a JSON number"),
        ('["EVENT","sub",{}] x', "text follows"),
        ('["EVENT","sub",{}],', "text follows"),
        ('["EVENT","sub",{},]', "not a JSON array"),
        ('["EVENT" "sub",{}]', "expected ',' or ']'"),
        ("[" * 100_000, "not a JSON array"),
    ],
)
def test_malformed_frames_are_garbage_with_a_reason(frame: str, because: str) -> None:
    message = parse_frame(frame)
    assert isinstance(message, Garbage)
    assert because in message.detail


def test_binary_frames_are_garbage() -> None:
    assert parse_frame(b'["EOSE","sub"]') == Garbage("binary frame of 14 bytes")


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ('["NEG-MSG","n1","6100"]', NegMsgFrame("n1", "6100")),
        ('["NEG-ERR","n1","blocked: too big"]', NegErrFrame("n1", "blocked: too big")),
    ],
)
def test_nip77_messages_are_read(frame: str, expected: object) -> None:
    assert parse_frame(frame) == expected


@pytest.mark.parametrize("frame", ['["NEG-MSG","n1"]', '["NEG-MSG","n1",97]', '["NEG-ERR",1,"x"]'])
def test_malformed_nip77_messages_are_garbage(frame: str) -> None:
    assert isinstance(parse_frame(frame), Garbage)
