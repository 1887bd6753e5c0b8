"""A content checksum per table that does not depend on row order, and so not on insertion order.

Definition. Each row is turned into canonical bytes: the JSON array of its content columns in a
fixed order, with bytea as lower-case hex, timestamptz as integer microseconds since the Unix
epoch (UTC), jsonb as its JSON value, and the array serialised with sorted object keys, no
spaces, and non-ASCII characters literal (UTF-8). The row's hash is the SHA-256 of those bytes,
read as a 256-bit big-endian integer. The table's checksum is the sum of its rows' hashes modulo
2**256, printed as 64 hex digits, next to the row count.

A sum is commutative, so the order rows are read or were inserted in cannot change it; a change
of any field changes that row's hash and so, but for a SHA-256 collision, the sum; and a row
present twice counts twice. It is computed in one pass with constant memory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

MODULUS = 1 << 256
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def canonical_value(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, datetime):
        return (value - _EPOCH) // _MICROSECOND
    return value


def canonical_row(values: Sequence[Any], json_columns: frozenset[int] = frozenset()) -> bytes:
    """The bytes a row is hashed as; `json_columns` hold jsonb text, compared as JSON values."""
    items = [
        json.loads(value) if i in json_columns and value is not None else canonical_value(value)
        for i, value in enumerate(values)
    ]
    text = json.dumps(items, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode()


def row_hash(canonical: bytes) -> int:
    return int.from_bytes(hashlib.sha256(canonical).digest(), "big")


@dataclass
class TableChecksum:
    rows: int = 0
    total: int = 0

    def add(self, canonical: bytes) -> None:
        self.rows += 1
        self.total = (self.total + row_hash(canonical)) % MODULUS

    @property
    def hex(self) -> str:
        return f"{self.total:064x}"


def checksum(
    rows: Iterable[Sequence[Any]], json_columns: frozenset[int] = frozenset()
) -> TableChecksum:
    result = TableChecksum()
    for row in rows:
        result.add(canonical_row(row, json_columns))
    return result
