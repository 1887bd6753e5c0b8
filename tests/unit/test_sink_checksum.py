"""The content checksum: order does not matter, every field does, duplicates count."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from connectors.sink.checksum import canonical_row, checksum

T = datetime(2024, 5, 1, tzinfo=UTC)
ROWS = [
    (bytes([n]) * 32, f"wss://relay{n}.example", T + timedelta(seconds=n), '[["t", "x"]]', n)
    for n in range(50)
]
JSON = frozenset({3})


def test_row_order_does_not_change_the_checksum() -> None:
    shuffled = list(ROWS)
    random.Random(7).shuffle(shuffled)
    assert shuffled != ROWS
    assert checksum(shuffled, JSON) == checksum(ROWS, JSON)
    assert checksum(reversed(ROWS), JSON).hex == checksum(ROWS, JSON).hex


def test_a_change_of_any_one_field_changes_the_checksum() -> None:
    base = checksum(ROWS, JSON)
    changes = [
        (b"\x01" + ROWS[3][0][1:], *ROWS[3][1:]),
        (ROWS[3][0], "wss://relay3.example/", *ROWS[3][2:]),
        (*ROWS[3][:2], ROWS[3][2] + timedelta(microseconds=1), *ROWS[3][3:]),
        (*ROWS[3][:3], '[["t", "y"]]', ROWS[3][4]),
        (*ROWS[3][:4], 4),
        (*ROWS[3][:4], None),
    ]
    for changed in changes:
        rows = [*ROWS[:3], changed, *ROWS[4:]]
        result = checksum(rows, JSON)
        assert result.rows == base.rows
        assert result.total != base.total, changed


def test_a_duplicate_row_counts() -> None:
    assert checksum([*ROWS, ROWS[0]], JSON).total != checksum(ROWS, JSON).total
    assert checksum([*ROWS, ROWS[0]], JSON).rows == len(ROWS) + 1


def test_jsonb_is_compared_as_json_not_as_text() -> None:
    assert canonical_row(['{"b": 1, "a": [1, 2]}'], frozenset({0})) == canonical_row(
        ['{"a":[1,2],"b":1}'], frozenset({0})
    )
    assert canonical_row(['{"a": 1}'], frozenset({0})) != canonical_row(
        ['{"a": 2}'], frozenset({0})
    )


def test_canonical_form_is_the_documented_one() -> None:
    row = (b"\x00\xff", T, None, True, "é")
    assert canonical_row(row) == '["00ff",1714521600000000,null,true,"é"]'.encode()


def test_empty_table() -> None:
    empty = checksum([])
    assert (empty.rows, empty.hex) == (0, "0" * 64)
