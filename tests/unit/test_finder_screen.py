"""Screening found text: normal form and network, or a reason to skip it; never an exception."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bigbrotr.nostr import Network
from connectors.finder import Screened, Skipped, SkipReason, screen_url


@pytest.mark.parametrize(
    ("text", "url", "network"),
    [
        ("WSS://Relay.Example.COM:443/", "wss://relay.example.com", Network.CLEARNET),
        ("ws://relay.example.com:80//nostr/", "ws://relay.example.com/nostr", Network.CLEARNET),
        ("wss://bücher.example", "wss://xn--bcher-kva.example", Network.CLEARNET),
        ("ws://abcdefghij234567.onion", "ws://abcdefghij234567.onion", Network.TOR),
        ("wss://relay.i2p", "wss://relay.i2p", Network.I2P),
        ("wss://relay.loki", "wss://relay.loki", Network.LOKI),
    ],
)
def test_usable_urls_get_their_normal_form_and_network(
    text: str, url: str, network: Network
) -> None:
    assert screen_url(text) == Screened(url, network)


@pytest.mark.parametrize(
    "text",
    [
        "https://relay.example.com",
        "relay.example.com",
        "wss://",
        "wss://a b.example",
        "wss://x:99999",
    ],
)
def test_garbage_is_skipped_as_invalid(text: str) -> None:
    screened = screen_url(text)
    assert isinstance(screened, Skipped)
    assert screened.reason is SkipReason.INVALID_URL


@pytest.mark.parametrize(
    "text", ["ws://127.0.0.1:7777", "wss://10.1.2.3", "ws://localhost:8080", "wss://[::1]"]
)
def test_private_and_local_hosts_are_skipped_unless_allowed(text: str) -> None:
    screened = screen_url(text)
    assert isinstance(screened, Skipped)
    assert screened.reason is SkipReason.NON_PUBLIC
    assert isinstance(screen_url(text, allow=[text]), Screened)


def test_overlong_text_is_skipped_before_parsing() -> None:
    screened = screen_url("wss://relay.example.com/" + "a" * 600)
    assert isinstance(screened, Skipped)
    assert screened.reason is SkipReason.TOO_LONG


@given(st.text(max_size=80) | st.from_regex(r"wss?://[\x00-\x7f]{0,40}", fullmatch=True))
def test_no_text_makes_screening_raise(text: str) -> None:
    screened = screen_url(text)
    assert isinstance(screened, Screened | Skipped)
    if isinstance(screened, Screened):
        assert screen_url(screened.url) == screened
