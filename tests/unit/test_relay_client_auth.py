"""NIP-42 bookkeeping: answer a challenge only with a key, match the relay's OK to our AUTH."""

from __future__ import annotations

import json

from bigbrotr.nostr import parse_event, verify
from connectors.client import OkFrame
from connectors.client.auth import AuthState

SECRET = "7f7ff03d123792d6ac594bfa67bf6d0c0ab55b6b1fdb6249303fe861f1ccba9a"
RELAY = "wss://relay.example.com"


def answered(state: AuthState) -> str:
    message = state.answer(RELAY, 1_700_000_000)
    assert message is not None
    return str(json.loads(message)[1]["id"])


def test_no_answer_without_a_key_or_without_a_challenge() -> None:
    keyless = AuthState(None)
    keyless.challenge = "c1"
    assert keyless.answer(RELAY, 1_700_000_000) is None
    assert AuthState(SECRET).answer(RELAY, 1_700_000_000) is None


def test_the_answer_is_a_valid_auth_event_for_the_challenge() -> None:
    state = AuthState(SECRET)
    state.challenge = "c1"
    message = state.answer(RELAY, 1_700_000_000)
    assert message is not None
    kind, obj = json.loads(message)
    event = parse_event(json.dumps(obj))
    verify(event)
    assert kind == "AUTH"
    assert ("challenge", "c1") in event.tags
    assert ("relay", RELAY) in event.tags
    assert state.pending == event.id


def test_accepted_ok_authenticates() -> None:
    state = AuthState(SECRET)
    state.challenge = "c1"
    event_id = answered(state)
    assert state.verdict(OkFrame(event_id, True, "")) is True
    assert state.authenticated
    assert state.pending is None
    assert state.refusal is None


def test_refused_ok_records_the_reason() -> None:
    state = AuthState(SECRET)
    state.challenge = "c1"
    event_id = answered(state)
    assert state.verdict(OkFrame(event_id, False, "restricted: not you")) is False
    assert not state.authenticated
    assert state.refusal == "restricted: not you"


def test_an_ok_for_another_event_is_not_a_verdict() -> None:
    state = AuthState(SECRET)
    state.challenge = "c1"
    answered(state)
    assert state.verdict(OkFrame("f" * 64, True, "")) is None
    assert not state.authenticated
    assert state.pending is not None


def test_reset_forgets_the_old_connection() -> None:
    state = AuthState(SECRET)
    state.challenge = "c1"
    state.verdict(OkFrame(answered(state), True, ""))
    state.reset()
    assert (state.challenge, state.pending, state.authenticated, state.refusal) == (
        None,
        None,
        False,
        None,
    )
    assert state.has_key
