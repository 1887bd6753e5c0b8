"""What the client sends: REQ, CLOSE and the NIP-42 AUTH event."""

from __future__ import annotations

import json

from bigbrotr.nostr import Filter, parse_event, verify
from connectors.client.commands import (
    AUTH_KIND,
    auth_event,
    auth_message,
    close_message,
    req_message,
)

SECRET = "7f7ff03d123792d6ac594bfa67bf6d0c0ab55b6b1fdb6249303fe861f1ccba9a"


def test_req_carries_every_filter_in_order() -> None:
    filters = [Filter(kinds=[1], since=5), Filter(authors=["a" * 64], limit=10)]
    assert json.loads(req_message("sub1", filters)) == [
        "REQ",
        "sub1",
        {"kinds": [1], "since": 5},
        {"authors": ["a" * 64], "limit": 10},
    ]


def test_close_names_the_subscription() -> None:
    assert close_message("sub1") == '["CLOSE","sub1"]'


def test_auth_event_is_a_signed_kind_22242_with_relay_and_challenge() -> None:
    event = auth_event(SECRET, "wss://relay.example.com", "challenge-1", 1_700_000_000)
    verify(event)
    assert event.kind == AUTH_KIND == 22242
    assert event.created_at == 1_700_000_000
    assert event.content == ""
    assert set(event.tags) == {("relay", "wss://relay.example.com"), ("challenge", "challenge-1")}


def test_auth_message_wraps_the_event_text() -> None:
    event = auth_event(SECRET, "wss://relay.example.com", "challenge-1", 1_700_000_000)
    kind, obj = json.loads(auth_message(event))
    assert kind == "AUTH"
    assert parse_event(json.dumps(obj)) == event
