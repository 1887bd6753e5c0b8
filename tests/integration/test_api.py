"""`bigbrotr api` over HTTP, as a real process over a real archive written by the sink's writers.

One server and one archive serve the module; each test only reads. The archive role is the one
migration 0007 creates, so every test here also runs on the read-only role.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from bigbrotr.archive import Archive
from bigbrotr.config import load_settings
from bigbrotr.errors import ArchiveError
from bigbrotr.nostr import Event, Filter, event_to_dict, matches, sign_event
from tests.support.api import api_process, scratch_database, store
from tests.support.cli import run_bigbrotr
from tests.support.events import TEST_KEYS
from tests.support.sink_load import probe_record

pytestmark = pytest.mark.integration

T = 1_700_000_000
KEY = "api-test-key-0123456789"
RELAY_UP, RELAY_DOWN, RELAY_NEW = "wss://up.example", "wss://down.example", "wss://new.example"


def _archive_events() -> list[Event]:
    notes = [
        sign_event(
            TEST_KEYS[n % 4], T + 100 * n, 1, [["t", "bigbrotr" if n % 3 else "other"]], f"n{n}"
        )
        for n in range(30)
    ]
    crowd = [sign_event(TEST_KEYS[n % 4], T + 5_000, 1, [], f"same second {n}") for n in range(12)]
    root = notes[0]
    replies = [
        sign_event(TEST_KEYS[1], T + 7_000 + n, 1, [["e", root.id], ["p", root.pubkey]], f"r{n}")
        for n in range(4)
    ]
    reactions = [
        sign_event(TEST_KEYS[2], T + 8_000 + n, 7, [["e", root.id], ["p", root.pubkey]], "+")
        for n in range(3)
    ]
    other = [
        sign_event(TEST_KEYS[3], T + 9_000, 0, [], '{"name":"ünï ✓"}'),
        sign_event(TEST_KEYS[0], T + 9_001, 30_023, [["T", "Up"], ["d", "article"]], "long form"),
    ]
    return notes + crowd + replies + reactions + other


@dataclass(frozen=True)
class Served:
    base: str
    dsn: str
    events: list[Event]


@pytest.fixture(scope="module")
async def served(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Served]:
    events = _archive_events()
    now = datetime.now(UTC)
    seen = datetime(2024, 5, 1, tzinfo=UTC)
    async with scratch_database(postgres_url) as dsn:
        down = probe_record(RELAY_DOWN, now - timedelta(hours=1), 0)
        down["checks"] = {"open": {"ok": False, "rtt_ms": None, "error": "refused"}}
        down["checks"].update(read=None, write=None)
        await store(
            dsn,
            events=[(event, RELAY_UP, seen) for event in events],
            relays=[
                {"url": url, "network": "clearnet", "source": "seed", "discovered_at": seen}
                for url in (RELAY_UP, RELAY_DOWN, RELAY_NEW)
            ],
            probes=[
                probe_record(RELAY_UP, now - timedelta(hours=2), 1),
                probe_record(RELAY_UP, now - timedelta(hours=1), 2),
                down,
            ],
        )
        logs = tmp_path_factory.mktemp("api")
        with api_process(
            dsn, logs, keys=KEY, private_routes='["stats"]', rate_limit="10000/second"
        ) as base:
            yield Served(base, dsn, events)


def _expected(events: list[Event], obj: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    flt = Filter.from_dict(obj)
    found = sorted((e for e in events if matches(flt, e)), key=lambda e: (-e.created_at, e.id))
    return [event_to_dict(e) for e in found[:limit]]


def _params(obj: dict[str, Any]) -> list[tuple[str, str | int]]:
    return [
        (key, item)
        for key, value in obj.items()
        for item in (value if isinstance(value, list) else [value])
    ]


def _filters() -> list[dict[str, Any]]:
    events = _archive_events()
    root = events[0]
    return [
        {},
        {"kinds": [7]},
        {"kinds": [9999]},
        {"authors": [root.pubkey]},
        {"authors": [events[1].pubkey, events[2].pubkey], "kinds": [1]},
        {"#t": ["other"]},
        {"#e": [root.id]},
        {"#p": [root.pubkey], "kinds": [7]},
        {"#T": ["Up"]},
        {"ids": [events[5].id, events[31].id, events[-1].id]},
        {"since": T + 1_000, "until": T + 6_000},
        {"kinds": [1], "limit": 5},
        {"#t": ["bigbrotr", "other"], "since": T + 2_000, "limit": 3},
    ]


@pytest.mark.parametrize("obj", _filters())
async def test_events_are_what_the_filter_matches_newest_first(
    served: Served, obj: dict[str, Any]
) -> None:
    async with httpx.AsyncClient(base_url=served.base) as client:
        response = await client.get("/events", params=_params(obj))
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["events"] == _expected(served.events, obj, obj.get("limit", 100))
    assert page["events"] or obj in ({"kinds": [9999]},)


async def test_keyset_pages_cover_every_event_once_across_a_crowded_second(
    served: Served,
) -> None:
    pages: list[list[dict[str, Any]]] = []
    params: dict[str, Any] = {"limit": 5, "since": T + 2_000, "until": T + 6_000}
    async with httpx.AsyncClient(base_url=served.base) as client:
        while True:
            body = (await client.get("/events", params=params)).json()
            pages.append(body["events"])
            if body["next_cursor"] is None:
                break
            params["cursor"] = body["next_cursor"]
    flat = [event for page in pages for event in page]
    expected = _expected(served.events, {"since": T + 2_000, "until": T + 6_000}, 1000)
    assert len(expected) == 22  # 10 notes, then 12 events in one second
    assert flat == expected
    assert [len(page) for page in pages] == [5, 5, 5, 5, 2]


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("ids=xyz", "64 lowercase hex"),
        ("authors=" + "A" * 64, "64 lowercase hex"),
        ("kinds=abc", "kinds must be a non-negative integer"),
        ("kinds=70000", "0..65535"),
        ("limit=501", "maximum of 500"),
        ("limit=-1", "limit must be a non-negative integer"),
        ("since=1&since=2", "given twice"),
        ("auhtors=" + "a" * 64, "unknown query parameter 'auhtors'"),
        ("%23ab=x", "unknown query parameter '#ab'"),
        ("search=hello", "unknown query parameter 'search'"),
        ("cursor=bm9wZQ", "cursor is not one this API issued"),
        ("&".join(f"kinds={n}" for n in range(1001)), "at most 1000 are served"),
    ],
)
async def test_bad_event_queries_get_a_400_saying_why(
    served: Served, query: str, says: str
) -> None:
    async with httpx.AsyncClient(base_url=served.base) as client:
        response = await client.get(f"/events?{query}")
    assert response.status_code == 400
    assert says in response.json()["error"]


async def test_relays_carry_their_newest_nip11_and_health(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.base) as client:
        first = (await client.get("/relays", params={"limit": 2})).json()
        rest = (await client.get("/relays", params={"after": first["next_after"]})).json()
        one = (await client.get("/relays", params={"url": "WSS://UP.example/"})).json()
        bad = await client.get("/relays", params={"network": "carrier-pigeon"})
        bad_url = await client.get("/relays", params={"url": "http://nope"})
    relays = {relay["url"]: relay for relay in first["relays"] + rest["relays"]}
    assert [r["url"] for r in first["relays"]] == [RELAY_DOWN, RELAY_NEW]
    assert rest["next_after"] is None
    up, down, new = relays[RELAY_UP], relays[RELAY_DOWN], relays[RELAY_NEW]
    assert up["nip11"] == {"name": "relay", "software": "test", "version": 2}
    assert up["health"]["state"] == "up"
    assert up["health"]["probes_24h"] == 2
    assert up["health"]["opens_24h"] == 2
    assert up["health"]["last_probe"]["open_rtt_ms"] == 12
    assert down["health"]["state"] == "down"
    assert down["health"]["last_probe"]["error"] == {"open": "refused"}
    assert down["health"]["opens_24h"] == 0
    assert new["health"] == {
        "state": "unknown",
        "last_probe": None,
        "probes_24h": 0,
        "opens_24h": 0,
    }
    assert new["nip11"] is None
    assert [r["url"] for r in one["relays"]] == [RELAY_UP]
    assert bad.status_code == 400
    assert "network" in bad.json()["error"]
    assert bad_url.status_code == 400
    assert bad_url.json()["error"].startswith("url:")


async def test_stats_need_the_api_key_and_count_the_archive(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.base) as client:
        without = await client.get("/stats")
        wrong = await client.get("/stats", headers={"X-API-Key": "x" * 24})
        right = await client.get("/stats", headers={"X-API-Key": KEY})
        public = await client.get("/events", params={"limit": 1})
    assert without.status_code == wrong.status_code == 401
    assert "X-API-Key" in without.json()["error"]
    assert public.status_code == 200
    stats = right.json()
    assert stats["events"] == stats["sightings"] == len(served.events)
    assert stats["probes"] == 3
    assert stats["relays"] == 3
    assert stats["relays_by_network"] == {"clearnet": 3}
    assert stats["top_kinds"][:2] == [{"kind": 1, "events": 46}, {"kind": 7, "events": 3}]
    assert stats["oldest_created_at"] == T
    assert stats["newest_created_at"] == T + 9_001


async def test_openapi_document_describes_every_route(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.base) as client:
        document = (await client.get("/openapi.json")).json()
        info = await client.get("/", headers={"Accept": "application/nostr+json"})
    assert document["openapi"].startswith("3.")
    assert {"/events", "/relays", "/stats"} <= set(document["paths"])
    names = {p["name"] for p in document["paths"]["/events"]["get"]["parameters"]}
    assert {"ids", "authors", "kinds", "#e", "since", "until", "limit", "cursor"} <= names
    assert "401" in document["paths"]["/stats"]["get"]["responses"]
    assert "401" not in document["paths"]["/events"]["get"]["responses"]
    assert document["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    assert info.headers["content-type"].startswith("application/nostr+json")
    assert info.json()["limitation"]["restricted_writes"] is True
    assert info.json()["limitation"]["max_limit"] == 500


async def test_the_api_role_cannot_write_and_a_writing_role_is_refused(
    served: Served, tmp_path: Any
) -> None:
    settings = load_settings(database={"url": served.dsn})
    reader = settings.api.database(settings.database)
    assert reader.url.startswith("postgresql://bigbrotr_reader@")
    conn = await asyncpg.connect(reader.dsn())
    try:
        assert await conn.fetchval("SELECT count(*) FROM events") == len(served.events)
        for statement in (
            "INSERT INTO relays (url, network, source, discovered_at) "
            "VALUES ('wss://x.example', 'clearnet', 'test', now())",
            "DELETE FROM events",
            "UPDATE relays SET status = 'retired'",
            "CREATE TABLE mine (x int)",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
    finally:
        await conn.close()
    writer = Archive(settings.database, pool_size=1, query_timeout_s=5)
    with pytest.raises(ArchiveError, match="read-only role"):
        await writer.open()
    result = await asyncio.to_thread(
        run_bigbrotr,
        ["api"],
        {"BIGBROTR_DATABASE__URL": served.dsn, "BIGBROTR_API__DATABASE_URL": served.dsn},
        tmp_path,
    )
    assert result.returncode == 1
    assert "read-only role" in result.stderr
    assert "Traceback" not in result.stderr


async def test_clients_over_the_rate_get_429_and_their_reqs_are_closed(
    served: Served, tmp_path: Any
) -> None:
    import websockets

    # api_process's readiness check spends the first of the 5.
    with api_process(served.dsn, tmp_path, rate_limit="5/minute") as base:
        async with httpx.AsyncClient(base_url=base) as client:
            codes = [
                (await client.get("/events", params={"limit": 1})).status_code for _ in range(4)
            ]
            over = await client.get("/events", params={"limit": 1})
        async with websockets.connect(base.replace("http", "ws")) as ws:
            await ws.send('["REQ","s",{"limit":1}]')
            closed = await asyncio.wait_for(ws.recv(), 5)
    assert codes == [200, 200, 200, 200]
    assert over.status_code == 429
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert "5/minute" in over.json()["error"]
    assert closed.startswith('["CLOSED","s","rate-limited:')
