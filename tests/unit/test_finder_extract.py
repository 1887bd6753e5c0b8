"""Which strings of an archived event the finder takes for relay URLs."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.finder import relay_urls_in_event


def _event(kind: int, tags: list[list[str]]) -> dict[str, Any]:
    return {"id": "ab" * 32, "kind": kind, "tags": tags}


def test_relay_list_r_tags_are_relays() -> None:
    event = _event(10002, [["r", "wss://a.example"], ["r", "wss://b.example", "write"]])
    assert relay_urls_in_event(event) == ["wss://a.example", "wss://b.example"]


def test_r_tags_of_other_kinds_are_web_links_not_relays() -> None:
    assert relay_urls_in_event(_event(1, [["r", "https://example.com/page"]])) == []


@pytest.mark.parametrize("name", ["e", "p"])
def test_the_third_element_of_e_and_p_tags_is_a_relay_hint(name: str) -> None:
    event = _event(1, [[name, "cd" * 32, "wss://hint.example"], [name, "ef" * 32]])
    assert relay_urls_in_event(event) == ["wss://hint.example"]


def test_other_tags_give_no_hints() -> None:
    assert relay_urls_in_event(_event(1, [["a", "30023:x:y", "wss://a.example"]])) == []


def test_nip66_discovery_d_tag_names_the_relay() -> None:
    event = _event(30166, [["d", "wss://monitored.example/"], ["n", "clearnet"]])
    assert relay_urls_in_event(event) == ["wss://monitored.example/"]


def test_d_tags_of_other_kinds_are_identifiers() -> None:
    assert relay_urls_in_event(_event(30023, [["d", "wss://not-a-relay.example"]])) == []


def test_empty_hints_and_short_tags_are_not_mentions() -> None:
    tags = [["p", "ab" * 32, ""], ["e", "cd" * 32, "   "], ["r"], [], ["p"]]
    assert relay_urls_in_event(_event(10002, tags)) == []


def test_each_url_once_in_tag_order_with_surrounding_space_removed() -> None:
    tags = [
        ["r", " wss://b.example "],
        ["p", "ab" * 32, "wss://a.example"],
        ["r", "wss://b.example"],
    ]
    assert relay_urls_in_event(_event(10002, tags)) == ["wss://b.example", "wss://a.example"]


def test_garbage_is_passed_on_for_screening_not_judged_here() -> None:
    assert relay_urls_in_event(_event(10002, [["r", "not a url"]])) == ["not a url"]
