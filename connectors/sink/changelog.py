"""What the aggregate changelogs hold on the wire: a UTF-8 text key and a UTF-8 JSON value.

Faust writes them with its `raw` key and `json` value codecs (README, "Aggregate tables"). A
record that is not that is refused as `bad_record`, one whose JSON is not the table's value as
`bad_shape`; keys are never deleted, so a tombstone is refused too.
"""

from __future__ import annotations

from typing import Any

import orjson

from connectors.sink.writer import Unwritable


def changelog_key(table: str, key: bytes | None) -> str:
    try:
        text = (key or b"").decode()
    except UnicodeDecodeError as exc:
        raise Unwritable("bad_record", f"{table}: the key {key!r} is not UTF-8") from exc
    if not text:
        raise Unwritable("bad_record", f"{table}: a record without a key")
    return text


def changelog_value(table: str, key: str, value: bytes | None, relay_url: str | None) -> Any:
    if value is None:
        raise Unwritable("bad_record", f"{table}[{key}]: a tombstone, but keys are never deleted")
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise Unwritable(
            "bad_record", f"{table}[{key}]: the value is not UTF-8 JSON ({exc})", relay_url
        ) from exc
