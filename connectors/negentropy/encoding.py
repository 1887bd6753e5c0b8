"""Negentropy wire primitives: varints, timestamps relative to the previous one, and bounds.

Pure and strict: a message that ends early, a varint past 64 bits or an id prefix longer than an
id is a `ProtocolError`, because relays are untrusted input.
"""

from __future__ import annotations

from dataclasses import dataclass

ID_SIZE = 32
FINGERPRINT_SIZE = 16
MAX_TIMESTAMP = (1 << 64) - 1
"""The reserved "infinity" timestamp: the upper bound of the last range; no item may use it."""

_MAX_VARINT_BYTES = 10


class ProtocolError(ValueError):
    """A negentropy message that does not follow protocol version 1."""


@dataclass(frozen=True, slots=True, order=True)
class Bound:
    """A point of the (timestamp, id) order: items below it are in the range, items at or above
    are not. `prefix` is the shortest id prefix that separates two neighbours; the rest is zeros.
    """

    timestamp: int
    prefix: bytes = b""

    @property
    def key(self) -> tuple[int, bytes]:
        return self.timestamp, self.prefix.ljust(ID_SIZE, b"\0")


INFINITY = Bound(MAX_TIMESTAMP)


def encode_varint(value: int) -> bytes:
    """Base-128 digits, most significant first, the high bit set on all but the last."""
    if value < 0:
        raise ValueError(f"a varint cannot hold the negative number {value}")
    digits = [value & 0x7F]
    value >>= 7
    while value:
        digits.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(digits))


class Reader:
    """Reads one message from the front; every read checks that the bytes are there."""

    def __init__(self, message: bytes) -> None:
        self._message = message
        self._offset = 0

    @property
    def remaining(self) -> int:
        return len(self._message) - self._offset

    def take(self, count: int) -> bytes:
        if count > self.remaining:
            raise ProtocolError(
                f"message ends early: {count} bytes wanted at offset {self._offset}, "
                f"{self.remaining} left"
            )
        start, self._offset = self._offset, self._offset + count
        return self._message[start : self._offset]

    def byte(self) -> int:
        return self.take(1)[0]

    def varint(self) -> int:
        value = 0
        for _ in range(_MAX_VARINT_BYTES):
            digit = self.byte()
            value = (value << 7) | (digit & 0x7F)
            if not digit & 0x80:
                if value > MAX_TIMESTAMP:
                    raise ProtocolError(f"varint {value} does not fit in 64 bits")
                return value
        raise ProtocolError(f"varint longer than {_MAX_VARINT_BYTES} bytes")


class BoundCodec:
    """Encodes and decodes bounds of one message: timestamps are deltas from the previous one
    in the same direction, so each message needs a fresh codec.
    """

    def __init__(self) -> None:
        self._last_in = 0
        self._last_out = 0

    def encode(self, bound: Bound) -> bytes:
        if bound.timestamp == MAX_TIMESTAMP:
            self._last_out = MAX_TIMESTAMP
            timestamp = encode_varint(0)
        else:
            delta = bound.timestamp - self._last_out
            if delta < 0:
                raise ValueError("bounds must be encoded in ascending order")
            self._last_out = bound.timestamp
            timestamp = encode_varint(delta + 1)
        return timestamp + encode_varint(len(bound.prefix)) + bound.prefix

    def decode(self, reader: Reader) -> Bound:
        encoded = reader.varint()
        timestamp = MAX_TIMESTAMP
        if encoded:
            timestamp = min(self._last_in + encoded - 1, MAX_TIMESTAMP)
        self._last_in = timestamp
        length = reader.varint()
        if length > ID_SIZE:
            raise ProtocolError(f"bound id prefix of {length} bytes; at most {ID_SIZE}")
        return Bound(timestamp, reader.take(length))
