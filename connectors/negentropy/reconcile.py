"""Range-based set reconciliation, negentropy protocol version 1 (0x61), either role.

The initiator (our synchronizer) sends `initiate()`, then feeds each answer to `reconcile`,
which returns the next message (None once done) and the ids only it has and only the other side
has. The responder (a relay) answers each message with `respond`. Message by message this
follows the reference implementation (hoytech/negentropy, cpp/negentropy.h), so both sides
produce the same bytes as it does; the frame size limit works the same way: past it, the rest of
the ranges is summed up in one fingerprint and handled in a later round.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from connectors.negentropy.encoding import (
    FINGERPRINT_SIZE,
    ID_SIZE,
    INFINITY,
    Bound,
    BoundCodec,
    ProtocolError,
    Reader,
    encode_varint,
)
from connectors.negentropy.items import ItemSet

PROTOCOL_VERSION = 0x61
MIN_FRAME_SIZE_LIMIT = 4096
_FRAME_SLACK = 200  # room left for the closing fingerprint once the limit is near
_BUCKETS = 16


class Mode(IntEnum):
    SKIP = 0
    FINGERPRINT = 1
    ID_LIST = 2


class UnsupportedVersionError(ProtocolError):
    """The other side answered with another protocol version than 1."""


@dataclass(frozen=True, slots=True)
class Reconciled:
    """One round on the initiator's side: `message` to send next (None: reconciliation done);
    `have` ids only we hold, `need` ids only the other side holds, found in this round.
    """

    message: bytes | None
    have: list[bytes]
    need: list[bytes]


class Negentropy:
    """One side of one reconciliation over `items`; `frame_size_limit` (bytes, 0 for none,
    else at least 4096) bounds every message this side builds.
    """

    def __init__(self, items: ItemSet, *, frame_size_limit: int = 0) -> None:
        if frame_size_limit and frame_size_limit < MIN_FRAME_SIZE_LIMIT:
            raise ValueError(f"frame_size_limit must be 0 or at least {MIN_FRAME_SIZE_LIMIT}")
        self._items = items
        self._frame_size_limit = frame_size_limit
        self._initiator = False

    def initiate(self) -> bytes:
        """The first message of the initiator."""
        if self._initiator:
            raise RuntimeError("this reconciliation was already initiated")
        self._initiator = True
        return bytes([PROTOCOL_VERSION]) + self._split_range(
            0, len(self._items), INFINITY, BoundCodec()
        )

    def reconcile(self, message: bytes) -> Reconciled:
        """Take the responder's answer (initiator only)."""
        if not self._initiator:
            raise RuntimeError("reconcile is the initiator's step; call initiate first")
        have: list[bytes] = []
        need: list[bytes] = []
        output = self._answer(message, have, need)
        return Reconciled(None if len(output) == 1 else output, have, need)

    def respond(self, message: bytes) -> bytes:
        """The responder's answer to one message of the initiator."""
        if self._initiator:
            raise RuntimeError("the initiator does not respond; use reconcile")
        return self._answer(message, [], [])

    def _exceeded(self, size: int) -> bool:
        return bool(self._frame_size_limit) and size > self._frame_size_limit - _FRAME_SLACK

    def _answer(self, message: bytes, have: list[bytes], need: list[bytes]) -> bytes:
        reader = Reader(message)
        codec = BoundCodec()
        full = bytearray([PROTOCOL_VERSION])
        version = reader.byte()
        if not 0x60 <= version <= 0x6F:
            raise ProtocolError(f"invalid negentropy protocol version byte 0x{version:02x}")
        if version != PROTOCOL_VERSION:
            if self._initiator:
                raise UnsupportedVersionError(
                    f"the relay speaks negentropy protocol version {version - 0x60}, not 1"
                )
            return bytes(full)
        items = self._items
        size = len(items)
        prev_bound = Bound(0)
        prev_index = 0
        skip = False
        while reader.remaining:
            out = bytearray()
            current = codec.decode(reader)
            mode = reader.varint()
            lower = prev_index
            upper = items.lower_bound(prev_index, size, current)
            if mode == Mode.SKIP:
                skip = True
            elif mode == Mode.FINGERPRINT:
                theirs = reader.take(FINGERPRINT_SIZE)
                if theirs == items.fingerprint(lower, upper):
                    skip = True
                else:
                    out += self._flush_skip(skip, prev_bound, codec)
                    skip = False
                    out += self._split_range(lower, upper, current, codec)
            elif mode == Mode.ID_LIST:
                theirs_ids = self._id_list(reader)
                for index in range(lower, upper):
                    item_id = items.id(index)
                    if item_id in theirs_ids:
                        theirs_ids.discard(item_id)
                    elif self._initiator:
                        have.append(item_id)
                if self._initiator:
                    skip = True
                    need.extend(theirs_ids)
                else:
                    out += self._flush_skip(skip, prev_bound, codec)
                    skip = False
                    ids = bytearray()
                    count = 0
                    end_bound = current
                    for index in range(lower, upper):
                        if self._exceeded(len(full) + len(ids)):
                            timestamp, item_id = items.item(index)
                            end_bound = Bound(timestamp, item_id)
                            upper = index
                            break
                        ids += items.id(index)
                        count += 1
                    out += codec.encode(end_bound) + encode_varint(Mode.ID_LIST)
                    out += encode_varint(count) + ids
                    full += out
                    out.clear()
            else:
                raise ProtocolError(f"unknown range mode {mode}")
            if self._exceeded(len(full) + len(out)):
                full += codec.encode(INFINITY) + encode_varint(Mode.FINGERPRINT)
                full += items.fingerprint(upper, size)
                break
            full += out
            prev_index = upper
            prev_bound = current
        return bytes(full)

    @staticmethod
    def _id_list(reader: Reader) -> set[bytes]:
        count = reader.varint()
        if count * ID_SIZE > reader.remaining:
            raise ProtocolError(f"an id list of {count} ids is longer than the message")
        return {reader.take(ID_SIZE) for _ in range(count)}

    @staticmethod
    def _flush_skip(skip: bool, bound: Bound, codec: BoundCodec) -> bytes:
        """The pending skip range up to `bound`, when the ranges before it needed no answer."""
        return codec.encode(bound) + encode_varint(Mode.SKIP) if skip else b""

    def _split_range(self, lower: int, upper: int, upper_bound: Bound, codec: BoundCodec) -> bytes:
        """Our side of `lower..upper`: its ids when few, else 16 bucket fingerprints."""
        items = self._items
        count = upper - lower
        if count < _BUCKETS * 2:
            ids = b"".join(items.id(index) for index in range(lower, upper))
            return (
                codec.encode(upper_bound) + encode_varint(Mode.ID_LIST) + encode_varint(count) + ids
            )
        out = bytearray()
        per_bucket, with_extra = divmod(count, _BUCKETS)
        current = lower
        for bucket in range(_BUCKETS):
            bucket_size = per_bucket + (1 if bucket < with_extra else 0)
            fingerprint = items.fingerprint(current, current + bucket_size)
            current += bucket_size
            bound = upper_bound if current == upper else items.minimal_bound(current)
            out += codec.encode(bound) + encode_varint(Mode.FINGERPRINT) + fingerprint
        return bytes(out)
