"""Relay URL normalisation, network classification and the SSRF guard."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bigbrotr.nostr import (
    InvalidRelayUrl,
    Network,
    NonPublicRelayUrl,
    check_public,
    classify_network,
    is_public_ip,
    normalize_relay_url,
    relay_host,
    resolve_and_check,
)

SEED_RELAYS = Path(__file__).parents[2] / "bigbrotr" / "data" / "seed_relays.txt"


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("wss://relay.damus.io", "wss://relay.damus.io"),
        ("  WSS://Relay.Damus.IO/  ", "wss://relay.damus.io"),
        ("wss://relay.damus.io:443", "wss://relay.damus.io"),
        ("ws://relay.example.com:80/", "ws://relay.example.com"),
        ("ws://relay.example.com:443", "ws://relay.example.com:443"),
        ("wss://relay.example.com:80", "wss://relay.example.com:80"),
        ("wss://relay.example.com//a///b//", "wss://relay.example.com/a/b"),
        ("wss://relay.example.com/Path/CASE", "wss://relay.example.com/Path/CASE"),
        ("wss://relay.example.com/?token=1#frag", "wss://relay.example.com"),
        ("wss://user:secret@relay.example.com/x", "wss://relay.example.com/x"),
        ("wss://relay.example.com.", "wss://relay.example.com"),
        ("wss://Bücher.example/", "wss://xn--bcher-kva.example"),
        ("wss://ÉCOLE.fr:7777", "wss://xn--cole-9oa.fr:7777"),
        ("wss://[2606:4700:0:0::1]:443/", "wss://[2606:4700::1]"),
        ("wss://[2606:4700::ABCD]:8080", "wss://[2606:4700::abcd]:8080"),
        ("wss://8.8.8.8:4848", "wss://8.8.8.8:4848"),
        ("wss://my_relay.example.com", "wss://my_relay.example.com"),
        ("wss://feeds.nostr.band/meme", "wss://feeds.nostr.band/meme"),
    ],
)
def test_normalization(url: str, normal: str) -> None:
    assert normalize_relay_url(url) == normal
    assert normalize_relay_url(normal) == normal


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://relay.example.com", "ws:// or wss://"),
        ("http://relay.example.com", "ws:// or wss://"),
        ("relay.example.com", "ws:// or wss://"),
        ("wss:relay.example.com", "no host"),
        ("wss://", "no host"),
        ("wss://:443", "no host"),
        ("wss://relay.example.com:99999", "invalid port"),
        ("wss://relay.example.com:http", "invalid port"),
        ("wss://relay.example.com:0", "port 0"),
        ("wss://relay example.com", "whitespace"),
        ("wss://relay.example.com/a b", "whitespace"),
        ("wss://relay.example.com\\@127.0.0.1", "whitespace"),
        ("wss://127.1", "neither a name nor an IP"),
        ("wss://0x7f.0.0.1", "neither a name nor an IP"),
        ("wss://2130706433", "neither a name nor an IP"),
        ("wss://010.0.0.1", "neither a name nor an IP"),
        ("wss://100.127.36.484/8:4848", "neither a name nor an IP"),
        ("wss://%6c%6fcalhost", "'%'"),
        ("wss://[fe80::1%25eth0]", "'%'"),
        ("wss://[::1", "cannot be parsed"),
        ("wss://a..b.com", "invalid host name"),
        ("wss://-bad.com", "invalid host name"),
        ("wss://" + "a" * 64 + ".com", "invalid host name"),
        ("wss://" + "a." * 127 + "com", "invalid host name"),
        ("wss://☃.net", "invalid host name"),
    ],
)
def test_invalid_urls_are_refused_with_a_reason(url: str, says: str) -> None:
    with pytest.raises(InvalidRelayUrl, match="relay URL") as caught:
        normalize_relay_url(url)
    assert says in str(caught.value)
    assert not isinstance(caught.value, NonPublicRelayUrl)


@pytest.mark.parametrize(
    ("host", "network"),
    [
        ("relay.damus.io", Network.CLEARNET),
        ("oxtrdevav64z64yb7x6rjg4ntzqjhedm5b5zjqulugknhzr46ny2qbad.onion", Network.TOR),
        ("relay.i2p", Network.I2P),
        ("relay.loki", Network.LOKI),
        ("onion", Network.CLEARNET),
        ("8.8.8.8", Network.CLEARNET),
    ],
)
def test_classify_network(host: str, network: Network) -> None:
    assert classify_network(host) is network


@pytest.mark.parametrize(
    "url",
    [
        "ws://127.0.0.1:7777",
        "wss://10.1.2.3",
        "wss://172.16.0.1",
        "wss://192.168.1.220:4848",
        "wss://100.64.0.1",
        "wss://169.254.1.1",
        "wss://0.0.0.0",
        "wss://224.0.0.1",
        "wss://239.1.1.1",
        "wss://240.0.0.1",
        "wss://255.255.255.255",
        "wss://[::1]",
        "wss://[::]",
        "wss://[fe80::1]",
        "wss://[fc00::1]",
        "wss://[ff02::1]",
        "wss://[2001:db8::1]",
        "wss://[::ffff:127.0.0.1]",
        "wss://[::ffff:10.0.0.1]",
        "wss://[64:ff9b::7f00:1]",
        "wss://[2002:c0a8:101::1]",
        "wss://[200:ff08:d688:fef4:fc96:ba63:3a11:3e76]",
        "wss://localhost:7777",
        "wss://LOCALHOST.",
        "wss://relay.localhost",
        "wss://printer.local",
        "wss://svc.cluster.internal",
    ],
)
def test_non_public_relays_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(NonPublicRelayUrl, match="allow-list"):
        check_public(url)
    host = relay_host(url)
    parts = urlsplit(url)
    port = parts.port or {"ws": 80, "wss": 443}[parts.scheme]
    netloc = f"[{host}]" if ":" in host else host
    for entry in (normalize_relay_url(url), url.upper(), host, netloc):
        check_public(url, allow=[entry])
    check_public(url, allow=[f"{netloc}:{port}"])
    with pytest.raises(NonPublicRelayUrl):
        check_public(url, allow=["wss://other.example.com", f"{netloc}:1"])


@pytest.mark.parametrize(
    "url",
    [
        "wss://relay.damus.io",
        "wss://8.8.8.8",
        "wss://[2606:4700::1111]",
        "wss://[::ffff:8.8.8.8]",
        "wss://[64:ff9b::808:808]",
        "wss://localhost.example.com",
        "wss://x.onion",
        "wss://x.i2p",
    ],
)
def test_public_relays_pass(url: str) -> None:
    check_public(url)


def test_seed_list() -> None:
    urls = SEED_RELAYS.read_text().splitlines()
    accepted: list[str] = []
    non_public: list[str] = []
    invalid: list[str] = []
    for url in urls:
        try:
            normal = normalize_relay_url(url)
        except InvalidRelayUrl:
            invalid.append(url)
            continue
        assert normalize_relay_url(normal) == normal
        try:
            check_public(normal)
        except NonPublicRelayUrl:
            non_public.append(url)
        else:
            accepted.append(normal)
    assert len(urls) == 8865
    assert invalid == ["wss://100.127.36.484/8:4848"]
    # The data README's 1,389 private or local IP literals, plus one Yggdrasil address (200::/7).
    assert len(non_public) == 1390
    assert len(accepted) == 7474
    assert len(set(accepted)) == 7474 - 3  # three relays listed both with and without :443
    for url in accepted:
        host = relay_host(url)
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            assert host != "localhost"
            assert not host.endswith((".local", ".localhost", ".internal"))
        else:
            assert address.is_global


hosts = st.one_of(
    st.from_regex(r"[a-zA-Z0-9ÄäÖöÜüßé_.\-]{1,30}", fullmatch=True),
    st.ip_addresses().map(lambda ip: f"[{ip}]" if ip.version == 6 else str(ip)),
)


@settings(max_examples=500)
@given(
    scheme=st.sampled_from(["ws", "wss", "WSS", "Ws", "http"]),
    userinfo=st.sampled_from(["", "u@", "u:p@"]),
    host=hosts,
    port=st.one_of(st.just(""), st.integers(0, 70_000).map(lambda port: f":{port}")),
    path=st.from_regex(r"(/{1,3}[a-zA-Z0-9%._~-]{0,5}){0,4}", fullmatch=True),
    tail=st.sampled_from(["", "?a=1", "#f", "?a#b"]),
)
def test_normalization_is_idempotent(
    scheme: str, userinfo: str, host: str, port: str, path: str, tail: str
) -> None:
    try:
        normal = normalize_relay_url(f"{scheme}://{userinfo}{host}{port}{path}{tail}")
    except InvalidRelayUrl:
        return
    assert normalize_relay_url(normal) == normal
    assert normal.startswith(("ws://", "wss://"))
    assert "@" not in normal
    assert "?" not in normal
    assert "#" not in normal
    assert not normal.endswith("/")
    assert "//" not in normal.removeprefix(scheme.lower() + "://")


@settings(max_examples=500)
@given(st.text(max_size=60).map(lambda text: "wss://" + text))
def test_arbitrary_text_is_normalized_or_refused(url: str) -> None:
    try:
        normal = normalize_relay_url(url)
    except InvalidRelayUrl:
        return
    assert normalize_relay_url(normal) == normal


def test_is_public_ip_ignores_scope() -> None:
    assert not is_public_ip("fe80::1%eth0")
    assert is_public_ip("1.1.1.1")


class FakeResolver:
    """Stands in for DNS so the any-address rule is tested without depending on real records."""

    def __init__(self, addresses: Sequence[str]) -> None:
        self.addresses = addresses
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append((host, port))
        return self.addresses


async def test_resolve_rejects_if_any_address_is_non_public() -> None:
    resolver = FakeResolver(["1.1.1.1", "10.0.0.5", "2606:4700::1111"])
    with pytest.raises(NonPublicRelayUrl, match=r"10\.0\.0\.5"):
        await resolve_and_check("wss://Rebind.example.com:4848/x", resolver=resolver)
    assert resolver.asked == [("rebind.example.com", 4848)]
    allowed = await resolve_and_check(
        "wss://rebind.example.com:4848", allow=["rebind.example.com"], resolver=resolver
    )
    assert allowed == ("1.1.1.1", "10.0.0.5", "2606:4700::1111")


async def test_resolve_returns_public_addresses() -> None:
    resolver = FakeResolver(["1.1.1.1", "2606:4700::1111"])
    assert await resolve_and_check("ws://relay.example.com", resolver=resolver) == (
        "1.1.1.1",
        "2606:4700::1111",
    )
    assert resolver.asked == [("relay.example.com", 80)]


@pytest.mark.parametrize(
    ("url", "addresses"),
    [("wss://x.onion", ()), ("wss://relay.i2p", ()), ("wss://8.8.8.8", ("8.8.8.8",))],
)
async def test_overlay_and_ip_literals_are_not_resolved(
    url: str, addresses: tuple[str, ...]
) -> None:
    resolver = FakeResolver(["10.0.0.1"])
    assert await resolve_and_check(url, resolver=resolver) == addresses
    assert resolver.asked == []


async def test_resolve_with_real_dns_of_allowed_localhost() -> None:
    addresses = await resolve_and_check("ws://localhost:7777", allow=["localhost:7777"])
    assert "127.0.0.1" in addresses or "::1" in addresses
    with pytest.raises(NonPublicRelayUrl):
        await resolve_and_check("ws://localhost:7777")


def _hosts_file_loopback_name() -> str | None:
    for line in Path("/etc/hosts").read_text().splitlines():
        fields = line.split("#")[0].split()
        if len(fields) > 1 and fields[0] in ("127.0.0.1", "::1"):
            for name in fields[1:]:
                if "localhost" not in name and "." not in name:
                    return name
    return None


async def test_real_dns_name_pointing_at_loopback_is_refused() -> None:
    name = _hosts_file_loopback_name()
    if name is None:
        pytest.skip("/etc/hosts names no loopback host other than localhost")
    with pytest.raises(NonPublicRelayUrl, match="resolves to the non-public"):
        await resolve_and_check(f"wss://{name}")


@pytest.mark.hostile
@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.255.254",
        "0.0.0.0",
        "10.0.0.1",
        "172.31.255.255",
        "192.168.0.1",
        "100.64.0.1",
        "169.254.169.254",
        "::1",
        "::",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:192.168.1.1",
        "fc00::1",
        "fd12:3456:789a::1",
        "fe80::1",
        "fe80::1%eth0",
        "fe80::1%2",
        "64:ff9b::a00:1",
        "2002:7f00:1::1",
        "ff02::1",
    ],
)
async def test_a_name_resolving_to_a_non_public_address_is_refused(address: str) -> None:
    """DNS answers under an attacker's control: the guard judges every address it is given."""
    resolver = FakeResolver(["93.184.216.34", address])
    with pytest.raises(NonPublicRelayUrl, match="resolves to the non-public"):
        await resolve_and_check("wss://attacker.example.com", resolver=resolver)
    assert resolver.asked == [("attacker.example.com", 443)]


private_v4 = st.sampled_from(
    ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16"]
).flatmap(lambda network: st.ip_addresses(v=4, network=network))


@pytest.mark.hostile
@given(private_v4)
def test_private_ipv4_is_refused_however_ipv6_embeds_it(address: ipaddress.IPv4Address) -> None:
    packed = int(address)
    embeddings = [
        address,
        ipaddress.IPv6Address(0xFFFF_0000_0000 | packed),  # v4-mapped
        ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | packed),  # NAT64
        ipaddress.IPv6Address((0x2002 << 112) | (packed << 80)),  # 6to4
    ]
    for ip in embeddings:
        assert not is_public_ip(str(ip))
        with pytest.raises(NonPublicRelayUrl):
            check_public(f"wss://[{ip}]" if ip.version == 6 else f"wss://{ip}")


@pytest.mark.hostile
@given(st.ip_addresses(v=6, network="fe80::/10"), st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True))
def test_link_local_ipv6_is_refused_with_any_scope(
    address: ipaddress.IPv6Address, scope: str
) -> None:
    assert not is_public_ip(f"{address}%{scope}")
