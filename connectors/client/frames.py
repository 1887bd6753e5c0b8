"""Relay-to-client messages (NIP-01, NIP-42, NIP-77) read from websocket frames, strictly and
without I/O.

An EVENT keeps the exact text of its event object as the relay sent it: the archive stores what
relays served, so the object is sliced out of the frame instead of being re-serialised. Anything a
relay should not send becomes `Garbage` with a reason, never an exception, because hostile frames
are expected input.

EVENT frames are most of the traffic, so they take a fast path: orjson decodes the whole frame
once, and the object's text starts where a regular expression over the two strings before it
ends. Whatever that path does not take (other messages, spellings such as `"\\u0045VENT"`, and
JSON orjson refuses: lone surrogate escapes, numbers out of a double's range) goes to the strict
scanner below, which explains what is wrong. orjson reads integers beyond 64 bits as floats, so
such an `id` or `created_at` is no claim there.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

_JSON_WHITESPACE = " \t\n\r"
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_EVENT_HEAD = re.compile(
    r'[ \t\n\r]*\[[ \t\n\r]*"EVENT"[ \t\n\r]*,[ \t\n\r]*"(?:[^"\\]|\\.)*"[ \t\n\r]*,[ \t\n\r]*'
)
_SAMPLE_CHARS = 80
_OTHER_KINDS = frozenset({"EOSE", "CLOSED", "NOTICE", "AUTH", "OK", "NEG-MSG", "NEG-ERR"})


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)


@dataclass(frozen=True, slots=True)
class EventFrame:
    """`["EVENT", sub, event]`; `text` is the event object exactly as received.

    `event_id` and `created_at` are what the object claims (None when missing or mistyped); the
    stream validator, not the client, decides whether the event is genuine. `fields` is the
    decoded object, for callers that need more of it without decoding `text` again.
    """

    subscription_id: str
    text: str
    event_id: str | None
    created_at: int | None
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EoseFrame:
    subscription_id: str


@dataclass(frozen=True, slots=True)
class ClosedFrame:
    subscription_id: str
    message: str


@dataclass(frozen=True, slots=True)
class NoticeFrame:
    message: str


@dataclass(frozen=True, slots=True)
class AuthFrame:
    challenge: str


@dataclass(frozen=True, slots=True)
class OkFrame:
    event_id: str
    accepted: bool
    message: str


@dataclass(frozen=True, slots=True)
class NegMsgFrame:
    """`["NEG-MSG", sub, hex]`: one negentropy message; `message` is the hex text as sent."""

    subscription_id: str
    message: str


@dataclass(frozen=True, slots=True)
class NegErrFrame:
    """`["NEG-ERR", sub, reason]`: the relay ended (or refused) a reconciliation."""

    subscription_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Garbage:
    """A frame that is not a relay message we understand; `detail` says why."""

    detail: str


RelayMessage = (
    EventFrame
    | EoseFrame
    | ClosedFrame
    | NoticeFrame
    | AuthFrame
    | OkFrame
    | NegMsgFrame
    | NegErrFrame
    | Garbage
)


class _MalformedArrayError(ValueError):
    pass


def parse_frame(frame: str | bytes) -> RelayMessage:
    """Read one websocket message from a relay."""
    if not isinstance(frame, str):
        return Garbage(f"binary frame of {len(frame)} bytes")
    head = _EVENT_HEAD.match(frame)
    if head is not None:
        event = _fast_event(frame, head.end())
        if event is not None:
            return event
    try:
        items = _scan_array(frame)
    except (ValueError, RecursionError) as exc:
        return Garbage(f"not a JSON array ({_short(str(exc))}): {_short(frame)}")
    if not items or type(items[0][0]) is not str:
        return Garbage(f"no message type: {_short(frame)}")
    kind = items[0][0]
    if kind == "EVENT":
        return _event(frame, items)
    if kind not in _OTHER_KINDS:
        return Garbage(f"unknown message type {_short(kind)!r}")
    message = _other(kind, [value for value, _, _ in items])
    if message is None:
        return Garbage(f"malformed {kind} message: {_short(frame)}")
    return message


def _fast_event(frame: str, start: int) -> EventFrame | None:
    """The EVENT frame whose object starts at `start`; None for the strict scanner to judge."""
    try:
        values = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return None
    # Valid JSON that `_EVENT_HEAD` matched is an array starting with "EVENT" and a string.
    if len(values) != 3 or type(values[2]) is not dict:
        return None
    end = len(frame.rstrip(_JSON_WHITESPACE)) - 1
    return _event_frame(values[1], frame[start:end].rstrip(_JSON_WHITESPACE), values[2])


def _scan_array(frame: str) -> list[tuple[Any, int, int]]:
    """The elements of a top-level JSON array with the offsets of their text."""
    index = _skip_whitespace(frame, 0)
    if frame[index : index + 1] != "[":
        raise _MalformedArrayError("the frame does not start with '['")
    index = _skip_whitespace(frame, index + 1)
    items: list[tuple[Any, int, int]] = []
    if frame[index : index + 1] == "]":
        index += 1
    else:
        while True:
            value, end = _DECODER.raw_decode(frame, index)
            items.append((value, index, end))
            index = _skip_whitespace(frame, end)
            separator = frame[index : index + 1]
            if separator not in (",", "]"):
                raise _MalformedArrayError(f"expected ',' or ']' at offset {index}")
            index = _skip_whitespace(frame, index + 1)
            if separator == "]":
                break
    if index != len(frame):
        raise _MalformedArrayError("text follows the closing ']'")
    return items


def _skip_whitespace(frame: str, index: int) -> int:
    match = _WHITESPACE.match(frame, index)
    return match.end() if match else index


def _event(frame: str, items: list[tuple[Any, int, int]]) -> RelayMessage:
    if len(items) != 3 or type(items[1][0]) is not str or type(items[2][0]) is not dict:
        return Garbage(f"malformed EVENT message: {_short(frame)}")
    obj, start, end = items[2]
    return _event_frame(items[1][0], frame[start:end], obj)


def _event_frame(subscription_id: str, text: str, obj: dict[str, Any]) -> EventFrame:
    event_id = obj.get("id")
    created_at = obj.get("created_at")
    return EventFrame(
        subscription_id=subscription_id,
        text=text,
        event_id=event_id if type(event_id) is str else None,
        created_at=created_at if type(created_at) is int else None,
        fields=obj,
    )


def _other(kind: str, values: list[Any]) -> RelayMessage | None:
    """Non-EVENT messages; extra trailing elements are tolerated, missing or mistyped ones not.

    The human-readable message of CLOSED and OK may be absent (older relays omit it).
    """
    first = values[1] if len(values) > 1 else None
    second = values[2] if len(values) > 2 else None
    text = values[3] if len(values) > 3 else ""
    if type(first) is not str:
        return None
    if kind == "EOSE":
        return EoseFrame(first)
    if kind == "NOTICE":
        return NoticeFrame(first)
    if kind == "AUTH":
        return AuthFrame(first)
    if kind in ("NEG-MSG", "NEG-ERR"):
        if type(second) is not str:
            return None
        return NegMsgFrame(first, second) if kind == "NEG-MSG" else NegErrFrame(first, second)
    if kind == "CLOSED":
        if second is None or type(second) is str:
            return ClosedFrame(first, second or "")
        return None
    if type(second) is bool and type(text) is str:
        return OkFrame(first, second, text)
    return None


def _short(text: str) -> str:
    return text if len(text) <= _SAMPLE_CHARS else f"{text[:_SAMPLE_CHARS]}..."
