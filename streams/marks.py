"""Offset marks that make a table update happen once per source record, however often it arrives.

A table value carries, per partition of the topic its updates come from, the highest offset
already applied. Records of one source partition reach one key in offset order (one producer,
one target partition), so a record at or below the mark was applied before: a redelivery after
a crash, a rewound consumer group, or a re-sent copy. The marks of one key are bounded by the
number of source partitions, so state does not grow with history.
"""

from __future__ import annotations

from typing import Any

Marks = dict[str, int]


def applied(marks: Marks, partition: int, offset: int) -> bool:
    """Whether the record at (partition, offset) is already in the value these marks belong to."""
    return offset <= marks.get(str(partition), -1)


def advanced(marks: Marks, partition: int, offset: int) -> Marks:
    return {**marks, str(partition): offset}


def count_once(value: dict[str, Any] | None, partition: int, offset: int) -> dict[str, Any] | None:
    """The counter value after one more record, or None when that record was already counted.

    The value is the JSON a reader of the changelog sees: `count`, and `applied` (the marks).
    """
    current = value or {"count": 0, "applied": {}}
    if applied(current["applied"], partition, offset):
        return None
    return {
        "count": current["count"] + 1,
        "applied": advanced(current["applied"], partition, offset),
    }
