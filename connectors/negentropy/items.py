"""The sorted (timestamp, id) set one side reconciles, with range fingerprints.

Kept compact (an array of timestamps and one bytes object of ids, 40 bytes per item), because a
relay window can hold many events and every item stays in memory for the reconciliation.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterable

from connectors.negentropy.encoding import (
    FINGERPRINT_SIZE,
    ID_SIZE,
    MAX_TIMESTAMP,
    Bound,
    encode_varint,
)

_MODULUS = 1 << (8 * ID_SIZE)

Item = tuple[int, bytes]
"""(timestamp, 32-byte id)."""


class ItemSet:
    """Items sorted by timestamp, then id; refuses malformed and duplicate items."""

    def __init__(self, items: Iterable[Item]) -> None:
        ordered = sorted(items)
        for index, (timestamp, item_id) in enumerate(ordered):
            if not 0 <= timestamp < MAX_TIMESTAMP:
                raise ValueError(f"timestamp {timestamp} is outside 0..2^64-2")
            if len(item_id) != ID_SIZE:
                raise ValueError(f"an id must be {ID_SIZE} bytes, not {len(item_id)}")
            if index and ordered[index - 1] == (timestamp, item_id):
                raise ValueError(f"item {timestamp} {item_id.hex()} is there twice")
        self._timestamps = array("Q", (timestamp for timestamp, _ in ordered))
        self._ids = b"".join(item_id for _, item_id in ordered)

    def __len__(self) -> int:
        return len(self._timestamps)

    def item(self, index: int) -> Item:
        return self._timestamps[index], self.id(index)

    def id(self, index: int) -> bytes:
        return self._ids[index * ID_SIZE : (index + 1) * ID_SIZE]

    def lower_bound(self, first: int, last: int, bound: Bound) -> int:
        """The first index in `first..last` whose item is not below `bound` (else `last`)."""
        key = bound.key
        while first < last:
            middle = (first + last) // 2
            if self.item(middle) < key:
                first = middle + 1
            else:
                last = middle
        return first

    def fingerprint(self, begin: int, end: int) -> bytes:
        """SHA-256 of (sum of ids as little-endian numbers mod 2^256, varint count), 16 bytes."""
        view = memoryview(self._ids)
        total = 0
        for offset in range(begin * ID_SIZE, end * ID_SIZE, ID_SIZE):
            total += int.from_bytes(view[offset : offset + ID_SIZE], "little")
        digest = hashlib.sha256(
            (total % _MODULUS).to_bytes(ID_SIZE, "little") + encode_varint(end - begin)
        )
        return digest.digest()[:FINGERPRINT_SIZE]

    def minimal_bound(self, index: int) -> Bound:
        """The shortest bound between item `index - 1` and item `index`."""
        prev_timestamp, prev_id = self.item(index - 1)
        timestamp, item_id = self.item(index)
        if timestamp != prev_timestamp:
            return Bound(timestamp)
        shared = 0
        while shared < ID_SIZE and item_id[shared] == prev_id[shared]:
            shared += 1
        return Bound(timestamp, item_id[: shared + 1])
