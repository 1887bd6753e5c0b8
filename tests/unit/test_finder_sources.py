"""The seed file and HTTP list sources, alone: what they yield and how they fail."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from bigbrotr.config import Settings
from bigbrotr.errors import ConfigError, SourceError
from connectors.finder.sources import fetch_url_list, read_seed

URL = "http://lists.example/relays.json"


def test_seed_lines_without_blanks_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "seed.txt"
    path.write_text("# relays\nwss://a.example\n\n  wss://b.example  \n#wss://c.example\n")
    assert read_seed(path) == ["wss://a.example", "wss://b.example"]


def test_the_shipped_seed_file_is_the_default() -> None:
    seed_path = Settings().finder.seed_path
    assert seed_path is not None
    assert len(read_seed(seed_path)) > 1000


def test_a_missing_seed_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"finder\.seed_path"):
        read_seed(tmp_path / "absent.txt")


def _client(response: httpx.Response) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(lambda request: response))


async def _fetch(response: httpx.Response, max_bytes: int = 10_000) -> list[str]:
    async with _client(response) as client:
        return await fetch_url_list(client, URL, timeout_s=5, max_bytes=max_bytes)


async def test_strings_of_a_json_list_other_items_dropped() -> None:
    body = ["wss://a.example", 7, None, {"url": "wss://x"}, "wss://b.example"]
    assert await _fetch(httpx.Response(200, json=body)) == ["wss://a.example", "wss://b.example"]


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx.Response(503, text="busy"), "status 503"),
        (httpx.Response(200, text="<html>"), "did not answer JSON"),
        (httpx.Response(200, json={"relays": []}), "answered a JSON dict, expected a list"),
        (httpx.Response(200, text="[" * 100_000), "did not answer JSON"),
    ],
)
async def test_bad_answers_are_source_errors(response: httpx.Response, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        await _fetch(response, max_bytes=1_000_000)


async def test_an_answer_over_the_cap_is_refused() -> None:
    body = json.dumps([f"wss://relay{n}.example" for n in range(1000)])
    with pytest.raises(SourceError, match="more than 10000 bytes"):
        await _fetch(httpx.Response(200, text=body))


async def test_transport_failures_are_source_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(SourceError, match="ConnectError"):
            await fetch_url_list(client, URL, timeout_s=5, max_bytes=100)
