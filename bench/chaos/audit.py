"""What a chaos run must end with, checked from the topics and the database after every process
has stopped:

- every record of `events.raw` is accounted for: a valid one by its sighting fact (event,
  relay, seen_at) on `sightings`, an invalid one by a dead letter with its relay and exact bytes
  on `rejects`;
- no duplicates: each id once on `events`, each fact once on `sightings`;
- the database holds exactly the expected events and (event, relay) sightings;
- `bigbrotr replay` into a fresh database, then `bigbrotr verify --against` it: the same
  content checksums as the live database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from bench.e2e.readback import read_topic
from bigbrotr.codec import Codec
from bigbrotr.config import Settings
from connectors.sink.databases import with_database


@dataclass
class Audit:
    raw: int = 0
    valid: int = 0
    rejected: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def audit_topics(
    settings: Settings, invalid_ids: set[str], expected_ids: set[str], pairs: int
) -> Audit:
    """`invalid_ids`: the ids the invalid events claim (a relay may re-serialise an event, so
    its bytes are not the ones it was given)."""
    codec = Codec()
    found = Audit()
    raw = [codec.decode("RawEvent", m.value) for m in await read_topic(settings, "events.raw")]
    facts = [
        (s["event_id"], s["relay_url"], s["seen_at"])
        for s in (
            codec.decode("Sighting", m.value) for m in await read_topic(settings, "sightings")
        )
    ]
    ids = [codec.decode("Event", m.value)["id"] for m in await read_topic(settings, "events")]
    letters = {
        (r["relay_url"], r["original"])
        for r in (codec.decode("Reject", m.value) for m in await read_topic(settings, "rejects"))
    }
    fact_set = set(facts)
    found.raw = len(raw)
    for record in raw:
        event_id = json.loads(record["raw"])["id"]
        if event_id in invalid_ids:
            found.rejected += (record["relay_url"], record["raw"]) in letters
        else:
            found.valid += (event_id, record["relay_url"], record["seen_at"]) in fact_set
    if found.valid + found.rejected != found.raw:
        found.problems.append(
            f"{found.raw - found.valid - found.rejected} of {found.raw} raw records are neither "
            "a sighting nor a reject"
        )
    if len(facts) != len(fact_set):
        found.problems.append(f"{len(facts) - len(fact_set)} sighting facts emitted twice")
    if len(ids) != len(set(ids)):
        found.problems.append(f"{len(ids) - len(set(ids))} event ids emitted twice on events")
    if set(ids) != expected_ids:
        found.problems.append(
            f"events topic: {len(expected_ids - set(ids))} ids missing, "
            f"{len(set(ids) - expected_ids)} unexpected"
        )
    found.problems += await _database(settings.database.dsn(), expected_ids, pairs)
    return found


async def _database(dsn: str, expected_ids: set[str], pairs: int) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        ids = {r[0] for r in await conn.fetch("SELECT encode(id, 'hex') FROM events")}
        sightings = await conn.fetchval("SELECT count(*) FROM sightings")
    finally:
        await conn.close()
    problems = []
    if ids != expected_ids:
        problems.append(
            f"database: {len(expected_ids - ids)} events missing, {len(ids - expected_ids)} "
            "unexpected"
        )
    if sightings != pairs:
        problems.append(f"database: {sightings} sightings, expected {pairs}")
    return problems


def replay_and_verify(env: dict[str, str], dsn: str, name: str, cwd: Path) -> list[str]:
    """`bigbrotr replay --fresh NAME` then `bigbrotr verify --against` it; problems found."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BIGBROTR_")}
    full = {**clean, "COLUMNS": "200", **env}
    command = [sys.executable, "-m", "bigbrotr"]
    replayed = subprocess.run(
        [*command, "replay", "--fresh", name], env=full, cwd=cwd, capture_output=True, text=True
    )
    if replayed.returncode != 0:
        return [f"replay failed: {replayed.stdout[-1500:]}{replayed.stderr[-1500:]}"]
    verified = subprocess.run(
        [*command, "verify", "--against", with_database(dsn, name)],
        env=full,
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    print(verified.stdout, end="", flush=True)
    if verified.returncode != 0:
        return [f"verify: the replayed database differs: {verified.stdout[-2000:]}"]
    return []
