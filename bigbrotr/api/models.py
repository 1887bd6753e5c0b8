"""The shapes the HTTP API answers with; FastAPI turns them into the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class EventOut(BaseModel):
    """A NIP-01 event exactly as signed: any client can check its id and signature."""

    id: str
    pubkey: str
    created_at: int
    kind: int
    tags: list[list[str]]
    content: str
    sig: str


class EventPage(BaseModel):
    events: list[EventOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null when this page is the last"
    )


class ProbeOut(BaseModel):
    probed_at: datetime
    open_ok: bool
    open_rtt_ms: int | None
    read_ok: bool | None
    read_rtt_ms: int | None
    write_ok: bool | None
    write_rtt_ms: int | None
    error: dict[str, Any] | None


class HealthOut(BaseModel):
    state: Literal["up", "down", "unknown"] = Field(
        description="up: the newest probe opened and read; down: it did not; unknown: no probe"
    )
    last_probe: ProbeOut | None
    probes_24h: int
    opens_24h: int


class RelayOut(BaseModel):
    url: str
    network: str
    source: str
    discovered_at: datetime
    status: str
    nip11: dict[str, Any] | None = Field(description="The newest NIP-11 document probed")
    nip11_observed_at: datetime | None
    health: HealthOut


class RelayPage(BaseModel):
    relays: list[RelayOut]
    next_after: str | None = Field(
        description="Pass as `after` for the next page; null when this page is the last"
    )


class KindCount(BaseModel):
    kind: int
    events: int


class StatsOut(BaseModel):
    """Exact counts from the tables (the stream's aggregate tables will replace them)."""

    events: int
    sightings: int
    probes: int
    oldest_created_at: int | None
    newest_created_at: int | None
    relays: int
    relays_by_network: dict[str, int]
    relays_by_status: dict[str, int]
    top_kinds: list[KindCount]
    counted_at: int


class ErrorOut(BaseModel):
    error: str
