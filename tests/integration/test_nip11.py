"""The NIP-11 fetcher against a real relay, a misbehaving HTTP server and a SOCKS5 proxy."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from bigbrotr.config import load_settings
from bigbrotr.errors import RelayInfoError
from connectors.max_limit import Nip11MaxLimit
from connectors.nip11 import ACCEPT, fetch_nip11, info_url
from tests.support.http_server import DOCUMENT, Nip11Server
from tests.support.relays import RunningRelay
from tests.support.socks_proxy import socks_proxy

pytestmark = pytest.mark.integration


@pytest.fixture
async def server() -> AsyncIterator[Nip11Server]:
    async with Nip11Server() as running:
        yield running


async def test_real_relay_document(nostr_relay_history: RunningRelay) -> None:
    document = await fetch_nip11(nostr_relay_history.url, allow=[nostr_relay_history.host_port])
    assert document.document["name"] == "bigbrotr test relay"
    assert 11 in document.supported_nips
    assert json.loads(document.canonical) == document.document
    assert document.canonical == json.dumps(
        document.document, sort_keys=True, separators=(",", ":")
    )


async def test_accept_header_host_and_max_limit(server: Nip11Server) -> None:
    document = await fetch_nip11(server.relay_url(), allow=[server.host_port])
    assert document.document == DOCUMENT
    assert document.max_limit == 77
    head = server.requests[-1].lower()
    assert f"accept: {ACCEPT}" in head
    assert f"host: {server.host_port}" in head


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/oversized", "over the 4096-byte limit"),
        ("/endless", "over the 4096-byte limit"),
        ("/slow", "no complete answer in 2s"),
        ("/not-json", "is not JSON"),
        ("/array", "not an object"),
        ("/redirect", "HTTP 301 to http://127.0.0.1:9/"),
        ("/missing", "HTTP 404"),
    ],
)
async def test_bad_answers_are_clear_errors(server: Nip11Server, path: str, reason: str) -> None:
    async with asyncio.timeout(10):
        with pytest.raises(RelayInfoError, match=reason):
            await fetch_nip11(
                server.relay_url(path), allow=[server.host_port], time_limit=2, max_bytes=4096
            )


async def test_private_address_refused_without_allow_list(server: Nip11Server) -> None:
    with pytest.raises(RelayInfoError, match="non-public address"):
        await fetch_nip11(server.relay_url())
    assert server.requests == []


async def test_dead_port_is_an_error() -> None:
    with pytest.raises(RelayInfoError, match="no address answered"):
        await fetch_nip11("ws://127.0.0.1:9", allow=["127.0.0.1:9"])


async def test_overlay_goes_through_the_proxy(server: Nip11Server) -> None:
    onion = "ws://bigbrotrtestrelayxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.onion"
    with pytest.raises(RelayInfoError, match="SOCKS5 proxy"):
        await fetch_nip11(onion)
    async with socks_proxy(server.host_port) as proxy:
        document = await fetch_nip11(onion, proxy=proxy.url)
    assert document.document == DOCUMENT
    assert any(".onion" in line for line in proxy.requests)


def test_info_url_maps_the_scheme() -> None:
    assert info_url("wss://Relay.Example.com/") == "https://relay.example.com/"
    assert info_url("ws://relay.example.com:8080/path/") == "http://relay.example.com:8080/path"


async def test_max_limit_lookup_fetches_once_per_relay(server: Nip11Server) -> None:
    settings = load_settings(connectors={"allow": [server.host_port]})
    lookup = Nip11MaxLimit(settings)
    assert await lookup(server.relay_url()) == DOCUMENT["limitation"]["max_limit"]
    assert await lookup(server.relay_url()) == DOCUMENT["limitation"]["max_limit"]
    assert len(server.requests) == 1, "the second lookup must come from the cache"
    assert await lookup(server.relay_url("/not-json")) is None
    assert len(server.requests) == 2
