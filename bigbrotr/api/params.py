"""Query strings and REQ filters into checked NIP-01 filters, with this server's limits applied.

`GET /events` takes the NIP-01 filter keys as query parameters: `ids`, `authors` and `kinds`
repeated or comma-separated, `#e`, `#p`... (URL-encoded `%23e`) repeated, `since`, `until` and
`limit` once each, plus the `cursor` of the previous page. Everything is checked by `Filter`, the
same model the relay side uses, so both refuse the same filters for the same reasons.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bigbrotr.archive import Keyset, filter_values
from bigbrotr.nostr import Filter, InvalidFilter

_LISTS = ("ids", "authors", "kinds")
_SINGLE = ("since", "until", "limit", "cursor")
_TAG = re.compile(r"#[A-Za-z]")
_DIGITS = re.compile(r"\d{1,19}")
KNOWN = "ids, authors, kinds, #<letter>, since, until, limit, cursor"


@dataclass(frozen=True, slots=True)
class FilterLimits:
    default_limit: int
    max_limit: int
    max_values: int


@dataclass(frozen=True, slots=True)
class EventsRequest:
    filter: Filter
    limit: int
    after: Keyset | None


def events_request(items: Iterable[tuple[str, str]], limits: FilterLimits) -> EventsRequest:
    """The request a query string describes; InvalidFilter or InvalidCursor says what is wrong."""
    lists: dict[str, list[str]] = {}
    single: dict[str, str] = {}
    for key, value in items:
        if key in _LISTS:
            lists.setdefault(key, []).extend(part for part in value.split(",") if part)
        elif _TAG.fullmatch(key):
            lists.setdefault(key, []).append(value)
        elif key in _SINGLE:
            if key in single:
                raise InvalidFilter(f"query parameter {key!r} given twice")
            single[key] = value
        else:
            raise InvalidFilter(f"unknown query parameter {key!r}; known: {KNOWN}")
    obj: dict[str, Any] = {key: values for key, values in lists.items() if key != "kinds"}
    if "kinds" in lists:
        obj["kinds"] = [_integer("kinds", value) for value in lists["kinds"]]
    for key in ("since", "until", "limit"):
        if key in single:
            obj[key] = _integer(key, single[key])
    flt = checked_filter(obj, limits)
    limit = limits.default_limit if flt.limit is None else flt.limit
    if limit > limits.max_limit:
        raise InvalidFilter(
            f"limit {limit} is over this server's maximum of {limits.max_limit}; "
            "ask for less and follow next_cursor"
        )
    after = Keyset.from_token(single["cursor"]) if "cursor" in single else None
    return EventsRequest(flt, limit, after)


def checked_filter(obj: Mapping[str, Any], limits: FilterLimits) -> Filter:
    """A filter object as NIP-01 and this server's value limit allow it."""
    flt = Filter.from_dict(obj)
    count = filter_values(flt)
    if count > limits.max_values:
        raise InvalidFilter(
            f"the filter lists {count} values (ids, authors, kinds, tag values); "
            f"at most {limits.max_values} are served, split it"
        )
    return flt


def _integer(name: str, text: str) -> int:
    if not _DIGITS.fullmatch(text):
        raise InvalidFilter(f"{name} must be a non-negative integer, not {text!r}")
    return int(text)
