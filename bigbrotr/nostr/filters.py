"""NIP-01 filters: what the synchronizer sends in REQ, and what our read-only relay matches against.

NIP-50 `search` is not supported: a relay that ignored it would answer a search with unrelated
events, so a filter that asks for it is refused instead.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from bigbrotr.nostr.event import Event

_HEX64 = re.compile(r"[0-9a-f]{64}")
_TAG_KEY = re.compile(r"#([a-zA-Z])")
_MAX_KIND = 65_535
_PLAIN_KEYS = frozenset({"ids", "authors", "kinds", "since", "until", "limit"})


class InvalidFilter(ValueError):  # noqa: N818  (the name reads as a verdict on the filter)
    """A filter NIP-01 does not allow, or that uses a feature we do not serve."""


@dataclass(frozen=True)
class Filter:
    """A NIP-01 filter; `None` means no condition, an empty collection matches nothing.

    `tags` maps a single letter to the values a `#<letter>` condition accepts.
    """

    ids: Collection[str] | None = None
    authors: Collection[str] | None = None
    kinds: Collection[int] | None = None
    tags: Mapping[str, Collection[str]] = field(default_factory=dict)
    since: int | None = None
    until: int | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        for name in ("ids", "authors"):
            values = getattr(self, name)
            if values is not None:
                object.__setattr__(self, name, _hex_set(name, values))
        if self.kinds is not None:
            object.__setattr__(self, "kinds", _kind_set(self.kinds))
        object.__setattr__(self, "tags", _tag_map(self.tags))
        for name in ("since", "until", "limit"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 0):
                raise InvalidFilter(
                    f"filter {name!r} must be a non-negative integer, not {value!r}"
                )

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Filter:
        """Read a filter object from a client's REQ, refusing unknown keys and wrong types."""
        if "search" in obj:
            raise InvalidFilter("NIP-50 search is not supported by this relay")
        tags: dict[str, Collection[str]] = {}
        for key, value in obj.items():
            match = _TAG_KEY.fullmatch(key)
            if match:
                tags[match.group(1)] = _string_list(key, value)
            elif key not in _PLAIN_KEYS:
                raise InvalidFilter(f"unknown filter key {key!r}")
        ids, authors = obj.get("ids"), obj.get("authors")
        kinds = obj.get("kinds")
        if kinds is not None and type(kinds) is not list:
            raise InvalidFilter("filter 'kinds' must be a list of integers")
        return cls(
            ids=None if ids is None else _string_list("ids", ids),
            authors=None if authors is None else _string_list("authors", authors),
            kinds=kinds,
            tags=tags,
            since=obj.get("since"),
            until=obj.get("until"),
            limit=obj.get("limit"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The filter object for a REQ message; sorted so equal filters serialise equally."""
        obj: dict[str, Any] = {}
        for name in ("ids", "authors", "kinds"):
            values = getattr(self, name)
            if values is not None:
                obj[name] = sorted(values)
        for letter in sorted(self.tags):
            obj[f"#{letter}"] = sorted(self.tags[letter])
        for name in ("since", "until", "limit"):
            value = getattr(self, name)
            if value is not None:
                obj[name] = value
        return obj


def matches(flt: Filter, event: Event) -> bool:
    """Whether the event satisfies every condition of the filter (`limit` is not a condition)."""
    if flt.ids is not None and event.id not in flt.ids:
        return False
    if flt.authors is not None and event.pubkey not in flt.authors:
        return False
    if flt.kinds is not None and event.kind not in flt.kinds:
        return False
    if flt.since is not None and event.created_at < flt.since:
        return False
    if flt.until is not None and event.created_at > flt.until:
        return False
    return all(
        any(len(tag) > 1 and tag[0] == letter and tag[1] in values for tag in event.tags)
        for letter, values in flt.tags.items()
    )


def _string_list(name: str, value: Any) -> list[str]:
    if type(value) is not list or not all(type(item) is str for item in value):
        raise InvalidFilter(f"filter {name!r} must be a list of strings")
    return value


def _hex_set(name: str, values: Collection[str]) -> frozenset[str]:
    bad = [value for value in values if not (type(value) is str and _HEX64.fullmatch(value))]
    if bad:
        raise InvalidFilter(f"filter {name!r} needs 64 lowercase hex characters, got {bad[0]!r}")
    return frozenset(values)


def _kind_set(kinds: Collection[int]) -> frozenset[int]:
    bad = [kind for kind in kinds if type(kind) is not int or not 0 <= kind <= _MAX_KIND]
    if bad:
        raise InvalidFilter(f"filter 'kinds' must hold integers 0..{_MAX_KIND}, got {bad[0]!r}")
    return frozenset(kinds)


def _tag_map(tags: Mapping[str, Collection[str]]) -> Mapping[str, frozenset[str]]:
    frozen: dict[str, frozenset[str]] = {}
    for letter, values in tags.items():
        if not _TAG_KEY.fullmatch(f"#{letter}"):
            raise InvalidFilter(f"tag filter key must be a single letter, not {letter!r}")
        if isinstance(values, str) or not all(type(value) is str for value in values):
            raise InvalidFilter(f"tag filter '#{letter}' must be a collection of strings")
        frozen[letter] = frozenset(values)
    return MappingProxyType(frozen)
