"""Where relay URLs come from outside the log: the seed file and HTTP APIs listing relays.

Both yield raw text; `screen` decides what is usable. An HTTP source that is down, slow, too big
or not a JSON list fails with a `SourceError` the finder logs, and is asked again later.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from bigbrotr.errors import ConfigError, SourceError


def read_seed(path: Path) -> list[str]:
    """Relay URLs of a text file, one a line; blank lines and `#` comments are skipped."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(
            f"cannot read the seed file {path} ({exc.strerror}); fix finder.seed_path or set it "
            "to null to start without seeds"
        ) from exc
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


async def fetch_url_list(
    client: httpx.AsyncClient, url: str, *, timeout_s: float, max_bytes: int
) -> list[str]:
    """The strings of the JSON list `url` answers; other items are dropped (counted by the
    caller as the difference). Reads at most `max_bytes` and gives up after `timeout_s`.
    """
    try:
        async with asyncio.timeout(timeout_s):
            body = await _read_capped(client, url, max_bytes)
    except TimeoutError as exc:
        raise SourceError(f"HTTP source {url} did not answer within {timeout_s:g}s") from exc
    except httpx.HTTPError as exc:
        raise SourceError(f"HTTP source {url} failed: {type(exc).__name__}: {exc}") from exc
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise SourceError(f"HTTP source {url} did not answer JSON: {exc}") from exc
    if not isinstance(document, list):
        raise SourceError(
            f"HTTP source {url} answered a JSON {type(document).__name__}, expected a list of "
            "relay URLs"
        )
    return [item for item in document if isinstance(item, str)]


async def _read_capped(client: httpx.AsyncClient, url: str, max_bytes: int) -> bytes:
    async with client.stream("GET", url, headers={"Accept": "application/json"}) as response:
        if response.status_code != httpx.codes.OK:
            raise SourceError(f"HTTP source {url} answered status {response.status_code}")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise SourceError(_too_big(url, max_bytes))
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise SourceError(_too_big(url, max_bytes))
        return bytes(body)


def _too_big(url: str, max_bytes: int) -> str:
    return (
        f"HTTP source {url} answered more than {max_bytes} bytes; raise finder.http_max_bytes "
        "if it is trusted"
    )
