"""Negentropy protocol v1: byte for byte against the reference's published vectors, and
reconciliation of random sets always finds exactly the symmetric difference within frame limits.

The interoperability check against a real relay (rust-nostr's negentropy, in nostr-sdk's
LocalRelay) is in tests/integration/test_negentropy_relay.py.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.negentropy import (
    MAX_TIMESTAMP,
    Bound,
    Item,
    ItemSet,
    Negentropy,
    ProtocolError,
    UnsupportedVersionError,
    encode_varint,
)
from connectors.negentropy.encoding import BoundCodec, Reader

VECTORS = json.loads((Path(__file__).parents[1] / "data" / "negentropy_vectors.json").read_text())


def _items(pairs: list[list[object]]) -> ItemSet:
    return ItemSet((int(str(ts)), bytes.fromhex(str(hex_id))) for ts, hex_id in pairs)


@pytest.mark.parametrize("vector", VECTORS["fingerprints"])
def test_fingerprints_match_the_reference(vector: dict[str, object]) -> None:
    items = _items(vector["items"])  # type: ignore[arg-type]
    assert items.fingerprint(0, len(items)).hex() == vector["fingerprint"]


@pytest.mark.parametrize("vector", VECTORS["initiate"])
def test_initial_message_matches_the_reference(vector: dict[str, object]) -> None:
    message = Negentropy(_items(vector["items"])).initiate()  # type: ignore[arg-type]
    assert message.hex() == vector["message"]


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, "00"), (1, "01"), (127, "7f"), (128, "8100"), (255, "817f"), (16384, "818000")],
)
def test_varints_are_base_128_most_significant_first(value: int, encoded: str) -> None:
    assert encode_varint(value).hex() == encoded
    assert Reader(bytes.fromhex(encoded)).varint() == value


@given(st.integers(min_value=0, max_value=MAX_TIMESTAMP))
def test_varints_round_trip(value: int) -> None:
    reader = Reader(encode_varint(value))
    assert reader.varint() == value
    assert reader.remaining == 0


@given(
    st.lists(st.tuples(st.integers(0, 2**40), st.binary(max_size=32)), min_size=1, max_size=20).map(
        sorted
    )
)
def test_bounds_round_trip_in_ascending_order(raw: list[tuple[int, bytes]]) -> None:
    bounds = [Bound(ts, prefix) for ts, prefix in raw] + [Bound(MAX_TIMESTAMP)]
    writer = BoundCodec()
    encoded = b"".join(writer.encode(bound) for bound in bounds)
    reader, decoder = Reader(encoded), BoundCodec()
    assert [decoder.decode(reader) for _ in bounds] == bounds
    assert reader.remaining == 0


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("", "ends early"),
        ("10", "version byte"),
        ("6100", "ends early"),  # a bound with no id-prefix length
        ("610021", "prefix of 33 bytes"),
        ("61000003", "unknown range mode 3"),
        ("6100000205", "longer than the message"),
        ("618080808080808080808001", "longer than 10 bytes"),
        ("6100000101", "ends early"),  # a fingerprint cut short
    ],
)
def test_malformed_messages_are_protocol_errors(message: str, error: str) -> None:
    client = Negentropy(ItemSet([]))
    client.initiate()
    with pytest.raises(ProtocolError, match=error):
        client.reconcile(bytes.fromhex(message))


def test_another_protocol_version_is_refused_by_the_initiator_and_answered_by_a_responder() -> None:
    client = Negentropy(ItemSet([]))
    client.initiate()
    with pytest.raises(UnsupportedVersionError, match="version 2"):
        client.reconcile(bytes([0x62]))
    assert Negentropy(ItemSet([])).respond(bytes([0x62])) == bytes([0x61])


@pytest.mark.parametrize(
    ("items", "error"),
    [
        ([(1, b"\0" * 31)], "32 bytes"),
        ([(MAX_TIMESTAMP, b"\0" * 32)], "outside"),
        ([(-1, b"\0" * 32)], "outside"),
        ([(5, b"\1" * 32), (5, b"\1" * 32)], "twice"),
    ],
)
def test_malformed_items_are_refused(items: list[Item], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        ItemSet(items)


def test_frame_size_limit_below_the_protocol_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="4096"):
        Negentropy(ItemSet([]), frame_size_limit=4095)


def _random_sets(
    seed: int, shared: int, client_only: int, server_only: int, seconds: int
) -> tuple[list[Item], list[Item], set[bytes], set[bytes]]:
    rng = random.Random(seed)

    def draw(count: int) -> list[Item]:
        return [(1_700_000_000 + rng.randrange(seconds), rng.randbytes(32)) for _ in range(count)]

    common, mine, theirs = draw(shared), draw(client_only), draw(server_only)
    return (
        common + mine,
        common + theirs,
        {item_id for _, item_id in mine},
        {item_id for _, item_id in theirs},
    )


def _reconcile(
    client_items: list[Item], server_items: list[Item], frame_size_limit: int
) -> tuple[set[bytes], set[bytes], int]:
    """Run both roles to the end; every message must respect the frame size limit."""
    client = Negentropy(ItemSet(client_items), frame_size_limit=frame_size_limit)
    server = Negentropy(ItemSet(server_items), frame_size_limit=frame_size_limit)
    have: set[bytes] = set()
    need: set[bytes] = set()
    message: bytes | None = client.initiate()
    rounds = 0
    while message is not None:
        rounds += 1
        assert rounds < 200, "reconciliation does not converge"
        if frame_size_limit:
            assert len(message) <= frame_size_limit
        answer = server.respond(message)
        if frame_size_limit:
            assert len(answer) <= frame_size_limit
        step = client.reconcile(answer)
        have.update(step.have)
        need.update(step.need)
        message = step.message
    return have, need, rounds


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    shared=st.integers(0, 400),
    client_only=st.integers(0, 120),
    server_only=st.integers(0, 120),
    seconds=st.sampled_from([1, 3, 50, 100_000]),
    frame_size_limit=st.sampled_from([0, 4096, 8192]),
)
def test_reconciliation_finds_exactly_the_symmetric_difference(
    seed: int, shared: int, client_only: int, server_only: int, seconds: int, frame_size_limit: int
) -> None:
    client_items, server_items, mine, theirs = _random_sets(
        seed, shared, client_only, server_only, seconds
    )
    have, need, _ = _reconcile(client_items, server_items, frame_size_limit)
    assert have == mine
    assert need == theirs


def test_a_large_difference_in_one_second_takes_several_bounded_rounds() -> None:
    """5000 relay-only ids, all in one second: the relay's lists exceed a 4 KiB frame, so they
    arrive over several rounds, each message within the limit."""
    client_items, server_items, mine, theirs = _random_sets(7, 3000, 10, 5000, 1)
    have, need, rounds = _reconcile(client_items, server_items, 4096)
    assert (have, need) == (mine, theirs)
    assert rounds > 5


def test_equal_sets_end_after_one_round() -> None:
    items, same, _, _ = _random_sets(3, 5000, 0, 0, 86_400)
    have, need, rounds = _reconcile(items, same, 0)
    assert (have, need, rounds) == (set(), set(), 1)
