"""What one fuzz input is checked for. Anything but the documented outcome raises, and atheris
files the input as a crash.

- `event`: the bytes as an event in `events.raw`: `validate` returns an event or raises
  `InvalidEvent`, judges the same bytes the same way twice, and `parse_event` reads the text as it
  reads the bytes.
- `frames`: the bytes split at newlines into websocket frames (a chunk that is not UTF-8 becomes a
  binary frame): each parses to a message, and a real history subscription fed them ends as
  `expected_end` says.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from bigbrotr.nostr import InvalidEvent, parse_event
from connectors.client import ClientLimits, EventFrame, Garbage, RelayMessage, parse_frame
from streams.validate import Limits, validate
from tests.support.forgeries import FORGERY_NOW, MAX_CONTENT_BYTES
from tests.support.scripted_socket import expected_end, read_script

LIMITS = Limits(max_content_bytes=MAX_CONTENT_BYTES)
CLIENT_LIMITS = ClientLimits(max_garbage_frames=3, max_events=4)
MAX_FRAMES = 16


def _verdict(data: bytes) -> str:
    try:
        return f"valid {validate(data, LIMITS, FORGERY_NOW).id}"
    except InvalidEvent as exc:
        return f"{exc.reason}: {exc.detail}"


def _parsed(raw: bytes | str) -> str:
    try:
        return f"parsed {parse_event(raw)}"
    except InvalidEvent as exc:
        return str(exc.reason)


def event(data: bytes) -> None:
    first = _verdict(data)
    if _verdict(data) != first:
        raise AssertionError(f"two verdicts on one input: {first!r}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    if _parsed(text) != _parsed(data):
        raise AssertionError("the text and its bytes parse differently")


def _checked(frame: str | bytes) -> RelayMessage:
    message = parse_frame(frame)
    if isinstance(message, EventFrame):
        if not isinstance(frame, str) or message.text not in frame:
            raise AssertionError("an EVENT's text is not a slice of its frame")
        if json.loads(message.text).keys() != message.fields.keys():
            raise AssertionError("an EVENT's fields are not its text's")
    elif isinstance(message, Garbage) and not message.detail:
        raise AssertionError("garbage without a reason")
    return message


class Frames:
    """The `frames` target; one event loop for every input."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()

    def __call__(self, data: bytes) -> None:
        frames: list[str | bytes] = []
        for chunk in data.split(b"\n")[:MAX_FRAMES]:
            try:
                frames.append(chunk.decode("utf-8"))
            except UnicodeDecodeError:
                frames.append(chunk)
        for frame in frames:
            if _checked(frame) != _checked(frame):
                raise AssertionError("two verdicts on one frame")
        outcome = self._loop.run_until_complete(read_script(frames, CLIENT_LIMITS))
        if outcome != expected_end(frames, CLIENT_LIMITS):
            raise AssertionError(f"the subscription ended {outcome}, not as expected")


TARGETS: dict[str, Callable[[], Callable[[bytes], None]]] = {
    "event": lambda: event,
    "frames": Frames,
}
