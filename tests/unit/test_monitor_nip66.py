"""NIP-66 tags and events built from probe records: pure, checked tag by tag."""

from __future__ import annotations

import json
from typing import Any

from bigbrotr.nostr import verify
from connectors.monitor.nip66 import (
    ANNOUNCEMENT_KIND,
    DISCOVERY_KIND,
    announcement_event,
    discovery_event,
    discovery_tags,
)
from connectors.monitor.probe import empty_probe

KEY = "11" * 32


def _probe(**changes: Any) -> dict[str, Any]:
    record = empty_probe("wss://relay.example.com", 1_700_000_000_000)
    record.update(changes)
    return record


def test_minimal_probe_has_d_and_n_only() -> None:
    assert discovery_tags(_probe()) == [["d", "wss://relay.example.com"], ["n", "clearnet"]]


def test_rtts_only_for_passed_checks() -> None:
    checks = {
        "open": {"ok": True, "rtt_ms": 120, "error": None},
        "read": {"ok": False, "rtt_ms": 30, "error": "CLOSED: auth-required: x"},
        "write": None,
    }
    tags = discovery_tags(_probe(checks=checks))
    assert ["rtt-open", "120"] in tags
    assert not [tag for tag in tags if tag[0] in ("rtt-read", "rtt-write")]


def test_nip11_facts_become_n_r_t_tags_and_geo_g() -> None:
    document = {
        "supported_nips": [42, 1, "x", 11, 1, -3],
        "limitation": {
            "auth_required": True,
            "payment_required": False,
            "restricted_writes": "yes",
            "min_pow_difficulty": 0,
        },
        "tags": ["sfw-only", "bitcoin", 7, "bitcoin"],
    }
    probe = _probe(nip11=json.dumps(document), network="tor", geo={"geohash": "u09tv"})
    tags = discovery_tags(probe)
    assert [tag for tag in tags if tag[0] == "N"] == [["N", "1"], ["N", "11"], ["N", "42"]]
    assert [tag for tag in tags if tag[0] == "R"] == [
        ["R", "auth"],
        ["R", "!payment"],
        ["R", "!pow"],
    ]
    assert [tag for tag in tags if tag[0] == "t"] == [["t", "sfw-only"], ["t", "bitcoin"]]
    assert ["g", "u09tv"] in tags
    assert ["n", "tor"] in tags


def test_discovery_event_is_signed_with_the_document_as_content() -> None:
    document = '{"name":"x"}'
    event = discovery_event(KEY, _probe(nip11=document), 1_700_000_123)
    verify(event)
    assert event.kind == DISCOVERY_KIND
    assert event.content == document
    assert event.tags[0] == ("d", "wss://relay.example.com")


def test_announcement_lists_frequency_timeouts_and_checks() -> None:
    event = announcement_event(
        KEY,
        1_700_000_000,
        frequency_s=3600,
        timeouts_s={"open": 10.0, "read": 2.5},
        checks=["open", "read", "nip11"],
    )
    verify(event)
    assert event.kind == ANNOUNCEMENT_KIND
    assert event.tags == (
        ("frequency", "3600"),
        ("timeout", "10000", "open"),
        ("timeout", "2500", "read"),
        ("c", "open"),
        ("c", "read"),
        ("c", "nip11"),
    )
