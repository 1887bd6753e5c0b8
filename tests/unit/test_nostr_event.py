"""NIP-01 parsing, id serialisation, signing and verification."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bigbrotr.nostr import (
    Event,
    InvalidEvent,
    RejectReason,
    check_not_future,
    compute_id,
    event_to_dict,
    event_to_json,
    parse_event,
    serialize_for_id,
    sign_event,
    verify,
    verify_signature,
)

REAL_EVENTS = Path(__file__).parents[1] / "data" / "real_events.jsonl"
SECRET = "7f7ff03d123792d6ac594bfa67bf6d0c0ab55b6b1fdb6249303fe861f1ccba9a"
SHORT_ESCAPES = {"\n": "\\n", '"': '\\"', "\\": "\\\\", "\r": "\\r", "\t": "\\t", "\b": "\\b"}
SHORT_ESCAPES["\f"] = "\\f"


def reference_string(text: str) -> str:
    """NIP-01's string rule written out character by character, to check the encoder against."""
    out = []
    for char in text:
        if char in SHORT_ESCAPES:
            out.append(SHORT_ESCAPES[char])
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def reference_serialization(event: Event) -> bytes:
    tags = ",".join("[" + ",".join(map(reference_string, tag)) + "]" for tag in event.tags)
    text = (
        f'[0,"{event.pubkey}",{event.created_at},{event.kind},[{tags}],'
        f"{reference_string(event.content)}]"
    )
    return text.encode("utf-8")


def real_lines() -> list[bytes]:
    return REAL_EVENTS.read_bytes().splitlines()


def signed(content: str = "hello", tags: Any = (("t", "nostr"),), kind: int = 1) -> Event:
    return sign_event(SECRET, 1_711_469_125, kind, tags, content)


def with_fields(event: Event, **fields: Any) -> str:
    return json.dumps(event_to_dict(event) | fields)


def reason_of(raw: bytes | str, **kwargs: Any) -> RejectReason:
    with pytest.raises(InvalidEvent) as caught:
        verify(parse_event(raw, **kwargs))
    return caught.value.reason


text_no_surrogates = st.text(st.characters(codec="utf-8"), max_size=200)
tag_lists = st.lists(st.lists(text_no_surrogates, min_size=1, max_size=4), max_size=6)


def test_all_real_events_parse_and_verify() -> None:
    lines = real_lines()
    assert len(lines) == 1000
    for line in lines:
        event = parse_event(line)
        verify(event)
        assert parse_event(line.decode()) == event
        assert compute_id(event) == json.loads(line)["id"]


def test_real_events_survive_canonical_round_trip() -> None:
    for line in real_lines():
        event = parse_event(line)
        assert parse_event(event_to_json(event)) == event


@pytest.mark.parametrize(
    ("field", "tamper"),
    [
        ("content", lambda value: value + " "),
        ("created_at", lambda value: value + 1),
        ("kind", lambda value: value ^ 1),
        ("tags", lambda value: [*value, ["t", "x"]]),
        ("pubkey", lambda value: "f" + value[1:] if value[0] != "f" else "e" + value[1:]),
        ("id", lambda value: "0" + value[1:] if value[0] != "0" else "1" + value[1:]),
    ],
)
def test_tampered_fields_fail_with_bad_id(field: str, tamper: Any) -> None:
    for line in real_lines()[:50]:
        obj = json.loads(line)
        obj[field] = tamper(obj[field])
        assert reason_of(json.dumps(obj, ensure_ascii=False)) is RejectReason.BAD_ID


def test_tampered_signatures_fail_with_bad_sig() -> None:
    lines = real_lines()
    rng = random.Random(7)
    for line, other in zip(lines[:100], lines[100:200], strict=True):
        obj = json.loads(line)
        position = rng.randrange(128)
        flipped = format(int(obj["sig"][position], 16) ^ 1, "x")
        for sig in (
            obj["sig"][:position] + flipped + obj["sig"][position + 1 :],
            json.loads(other)["sig"],
        ):
            assert reason_of(json.dumps(obj | {"sig": sig})) is RejectReason.BAD_SIG


def test_pubkey_off_the_curve_does_not_verify() -> None:
    event = dataclasses.replace(signed(), pubkey="f" * 64)
    assert not verify_signature(event)


def test_serialization_escapes_exactly_what_nip01_says() -> None:
    controls = "".join(map(chr, range(0x20)))
    text = controls + '"\\/\x7f\u2028\u2029😀\U0010fffd é'
    serialized = serialize_for_id("a" * 64, 1, 2, [["e", text]], text)
    escaped = (
        "\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r"
        "\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018"
        '\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\\"\\\\/\x7f\u2028\u2029😀\U0010fffd é'
    )
    expected = f'[0,"{"a" * 64}",1,2,[["e","{escaped}"]],"{escaped}"]'
    assert serialized == expected.encode("utf-8")


@settings(max_examples=300)
@given(content=text_no_surrogates, tags=tag_lists, kind=st.integers(0, 65_535))
def test_serialization_matches_reference_rules(
    content: str, tags: list[list[str]], kind: int
) -> None:
    event = signed(content, tags, kind)
    assert serialize_for_id(event.pubkey, event.created_at, kind, tags, content) == (
        reference_serialization(event)
    )


@settings(max_examples=300)
@given(content=text_no_surrogates, tags=tag_lists, kind=st.integers(0, 65_535))
def test_canonical_json_round_trips(content: str, tags: list[list[str]], kind: int) -> None:
    event = signed(content, tags, kind)
    parsed = parse_event(event_to_json(event))
    assert parsed == event
    verify(parsed)


@settings(max_examples=300)
@given(
    content=text_no_surrogates,
    tags=tag_lists,
    seed=st.integers(0, 2**32),
    ascii_only=st.booleans(),
    indent=st.sampled_from([None, 0, 2, "\t"]),
)
def test_id_is_stable_under_equivalent_json_text(
    content: str, tags: list[list[str]], seed: int, ascii_only: bool, indent: int | str | None
) -> None:
    event = signed(content, tags)
    items = list(event_to_dict(event).items())
    random.Random(seed).shuffle(items)
    variant = json.dumps(dict(items), ensure_ascii=ascii_only, indent=indent)
    parsed = parse_event(variant.encode("utf-8"))
    assert parsed == event
    assert compute_id(parsed) == event.id
    verify(parsed)


def test_surrogate_pair_escape_is_one_character() -> None:
    raw = with_fields(signed("😀"))
    assert "\\ud83d\\ude00" in raw
    parsed = parse_event(raw)
    assert parsed.content == "😀"
    verify(parsed)


def test_escaped_backslash_before_u_is_not_a_surrogate() -> None:
    event = signed("\\ud800")
    raw = with_fields(event)
    assert "\\\\ud800" in raw
    verify(parse_event(raw))


@pytest.mark.parametrize("escape", ["\\ud800", "\\uDFFF x", "\\udbff", "\\ude00\\ud83d"])
@pytest.mark.parametrize("where", ["content", "tag"])
def test_lone_surrogate_escapes_are_bad_utf8(escape: str, where: str) -> None:
    event = signed("MARK") if where == "content" else signed(tags=[["t", "MARK"]])
    raw = event_to_json(event).replace("MARK", escape)
    assert escape in raw
    assert reason_of(raw) is RejectReason.BAD_UTF8


def test_invalid_utf8_bytes_and_lone_surrogate_str_are_bad_utf8() -> None:
    raw = with_fields(signed("é")).encode("utf-8")
    assert reason_of(raw.replace(b"\\u00e9", b"\xff")) is RejectReason.BAD_UTF8
    assert reason_of(event_to_json(signed("x")).replace('"x"', '"\ud800"')) is RejectReason.BAD_UTF8


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"id": "A" * 64}, RejectReason.BAD_SHAPE),
        ({"id": "a" * 63}, RejectReason.BAD_SHAPE),
        ({"id": "a" * 64 + "\n"}, RejectReason.BAD_SHAPE),
        ({"pubkey": "g" * 64}, RejectReason.BAD_SHAPE),
        ({"pubkey": 5}, RejectReason.BAD_SHAPE),
        ({"sig": "a" * 127}, RejectReason.BAD_SHAPE),
        ({"created_at": True}, RejectReason.BAD_SHAPE),
        ({"created_at": 1.0}, RejectReason.BAD_SHAPE),
        ({"created_at": -1}, RejectReason.BAD_SHAPE),
        ({"created_at": "1"}, RejectReason.BAD_SHAPE),
        ({"created_at": 2**63}, RejectReason.BAD_SHAPE),
        ({"kind": False}, RejectReason.BAD_SHAPE),
        ({"kind": 1.5}, RejectReason.BAD_SHAPE),
        ({"kind": 65_536}, RejectReason.BAD_KIND),
        ({"kind": -1}, RejectReason.BAD_KIND),
        ({"tags": {}}, RejectReason.BAD_SHAPE),
        ({"tags": ["e"]}, RejectReason.BAD_SHAPE),
        ({"tags": [["e", 1]]}, RejectReason.BAD_SHAPE),
        ({"tags": [["e", None]]}, RejectReason.BAD_SHAPE),
        ({"tags": [[["e"]]]}, RejectReason.BAD_SHAPE),
        ({"content": None}, RejectReason.BAD_SHAPE),
        ({"content": ["x"]}, RejectReason.BAD_SHAPE),
    ],
)
def test_wrong_shapes_are_refused(change: dict[str, Any], reason: RejectReason) -> None:
    assert reason_of(with_fields(signed(), **change)) is reason


@pytest.mark.parametrize("field", ["id", "pubkey", "created_at", "kind", "tags", "content", "sig"])
def test_missing_field_is_bad_shape(field: str) -> None:
    obj = event_to_dict(signed())
    del obj[field]
    with pytest.raises(InvalidEvent, match=field) as caught:
        parse_event(json.dumps(obj))
    assert caught.value.reason is RejectReason.BAD_SHAPE


@pytest.mark.parametrize("raw", ["[]", '"event"', "null", "1"])
def test_non_object_is_bad_shape(raw: str) -> None:
    assert reason_of(raw) is RejectReason.BAD_SHAPE


def test_extra_fields_and_empty_tags_are_tolerated() -> None:
    event = signed(tags=[[]])
    parsed = parse_event(with_fields(event, seen_on=["wss://x"], extra={"a": 1}))
    assert parsed == event
    verify(parsed)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "{",
        '{"id": "a",}',
        b"\xef\xbb\xbf{}".decode("utf-8"),
        "[" * 100_000 + "]" * 100_000,
        '{"kind": ' + "9" * 5000 + "}",
        '{"kind": NaN}',
        '{"created_at": Infinity}',
        "{} {}",
    ],
)
def test_broken_json_is_bad_json(raw: str) -> None:
    assert reason_of(raw) is RejectReason.BAD_JSON


def test_duplicate_keys_are_bad_json() -> None:
    raw = event_to_json(signed("a"))[:-1] + ',"content":"b"}'
    with pytest.raises(InvalidEvent, match="content") as caught:
        parse_event(raw)
    assert caught.value.reason is RejectReason.BAD_JSON


def test_size_limit_counts_utf8_bytes() -> None:
    raw = event_to_json(signed("é" * 100))
    size = len(raw.encode("utf-8"))
    assert size > len(raw)
    assert parse_event(raw, max_bytes=size) == parse_event(raw)
    assert reason_of(raw, max_bytes=size - 1) is RejectReason.TOO_LARGE
    assert reason_of(raw.encode("utf-8"), max_bytes=size - 1) is RejectReason.TOO_LARGE


def test_future_events_are_refused_beyond_tolerance() -> None:
    event = signed()
    check_not_future(event, now=event.created_at - 60, tolerance=60)
    with pytest.raises(InvalidEvent) as caught:
        check_not_future(event, now=event.created_at - 61, tolerance=60)
    assert caught.value.reason is RejectReason.FUTURE


def test_sign_event_refuses_what_a_validator_would_refuse() -> None:
    with pytest.raises(InvalidEvent) as caught:
        sign_event(SECRET, 1, 70_000, [], "")
    assert caught.value.reason is RejectReason.BAD_KIND


def test_event_is_immutable_and_hashable() -> None:
    event = signed()
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.content = "changed"  # type: ignore[misc]
    assert {event, parse_event(event_to_json(event))} == {event}


def test_canonical_json_has_nip01_field_order_and_no_whitespace() -> None:
    event = signed("a b", [["t", "x y"]])
    text = event_to_json(event)
    assert list(json.loads(text)) == [
        "id",
        "pubkey",
        "created_at",
        "kind",
        "tags",
        "content",
        "sig",
    ]
    assert text.count(" ") == 2
