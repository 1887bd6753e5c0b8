"""A candidate's retries: growing delays, retirement after the configured count, and its record."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bigbrotr.codec import Codec
from bigbrotr.nostr import Network
from connectors.finder import Candidate, RetryPolicy, Status, candidate_from_record

START = 1_700_000_000_000
POLICY = RetryPolicy(max_attempts=4, delay_s=10.0, backoff=3.0, max_delay_s=60.0)


def _new() -> Candidate:
    return Candidate.discovered("wss://relay.example.com", Network.CLEARNET, "seed", START)


def test_a_new_candidate_is_due_at_once() -> None:
    candidate = _new()
    assert candidate.due(START)
    assert not candidate.due(START - 1)
    assert (candidate.status, candidate.attempts) == (Status.PENDING, 0)


def test_failures_wait_longer_each_time_up_to_the_cap_then_retire() -> None:
    candidate, now, waits = _new(), START, []
    while candidate.status is Status.PENDING:
        candidate = candidate.failed("connect_failed: refused", now, POLICY)
        if candidate.next_attempt_at is not None:
            waits.append(candidate.next_attempt_at - now)
            assert not candidate.due(candidate.next_attempt_at - 1)
            assert candidate.due(candidate.next_attempt_at)
            now = candidate.next_attempt_at
    assert waits == [10_000, 30_000, 60_000]
    assert (candidate.status, candidate.attempts) == (Status.RETIRED, 4)
    assert candidate.next_attempt_at is None
    assert candidate.last_error == "connect_failed: refused"
    assert not candidate.due(now + 10**9)


def test_one_allowed_attempt_retires_at_the_first_failure() -> None:
    retired = _new().failed("x", START, RetryPolicy(max_attempts=1))
    assert retired.status is Status.RETIRED


def test_accepted_keeps_discovery_facts_and_is_never_due() -> None:
    accepted = _new().failed("idle", START, POLICY).accepted(START + 5)
    assert (accepted.status, accepted.updated_at, accepted.next_attempt_at) == (
        Status.ACCEPTED,
        START + 5,
        None,
    )
    assert accepted.discovery_record() == {
        "url": "wss://relay.example.com",
        "network": "clearnet",
        "source": "seed",
        "discovered_at": START,
    }
    assert not accepted.due(START + 10**9)


@pytest.mark.parametrize(
    "candidate",
    [
        _new(),
        _new().failed("connect_failed: refused", START + 1, POLICY),
        _new().accepted(START + 2),
        replace(_new(), network=Network.TOR, url="ws://abcdefghij234567.onion"),
    ],
)
def test_the_record_round_trips_through_the_avro_contract(candidate: Candidate) -> None:
    codec = Codec()
    encoded = codec.encode("RelayCandidate", candidate.record())
    assert candidate_from_record(codec.decode("RelayCandidate", encoded)) == candidate
    discovered = codec.decode(
        "RelayDiscovered", codec.encode("RelayDiscovered", candidate.discovery_record())
    )
    assert discovered["url"] == candidate.url
