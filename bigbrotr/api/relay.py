"""The archive as a read-only NIP-01 relay: what one websocket client's frames are answered with.

REQ is answered with the stored events of each filter (newest first, `limit` per filter, capped
at `api.max_limit`, duplicates across filters sent once), then EOSE. Subscriptions stay open until
CLOSE and count against `api.relay_max_subscriptions`, but nothing is pushed after EOSE: the
archive is read as it is at the REQ. EVENT is refused with `OK false "blocked: ..."`. The logic is
pure over an `EventSource`; the websocket around it is in `app.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from bigbrotr.api.params import FilterLimits, checked_filter
from bigbrotr.archive import Keyset
from bigbrotr.errors import ArchiveError
from bigbrotr.nostr import Event, Filter, InvalidFilter, event_to_json

BLOCKED = (
    "blocked: this relay is a read-only archive of other relays; publish to those relays, and "
    "the archive picks the event up from them"
)
_MAX_SUBSCRIPTION_ID = 64


class EventSource(Protocol):
    async def events(self, flt: Filter, *, limit: int, after: Keyset | None = None) -> list[Event]:
        """Up to `limit` events matching `flt`, newest first (NIP-01 order)."""
        ...


@dataclass(frozen=True, slots=True)
class RelayLimits:
    filters: FilterLimits
    max_subscriptions: int
    max_filters: int


def information(limits: RelayLimits, max_message_bytes: int) -> dict[str, Any]:
    """The NIP-11 document: what a client may ask and that nobody may write."""
    return {
        "name": "BigBrotr archive",
        "description": "Read-only archive of events gathered from many Nostr relays",
        "supported_nips": [1, 11],
        "limitation": {
            "max_message_length": max_message_bytes,
            "max_subscriptions": limits.max_subscriptions,
            "max_filters": limits.max_filters,
            "max_limit": limits.filters.max_limit,
            "default_limit": limits.filters.default_limit,
            "max_subid_length": _MAX_SUBSCRIPTION_ID,
            "auth_required": False,
            "payment_required": False,
            "restricted_writes": True,
        },
    }


class RelaySession:
    """One client connection: its open subscriptions and the answer to each frame it sends."""

    def __init__(
        self, source: EventSource, limits: RelayLimits, allow: Callable[[], Awaitable[bool]]
    ) -> None:
        self._source = source
        self._limits = limits
        self._allow = allow
        self.open: set[str] = set()

    async def handle(self, text: str) -> AsyncIterator[str]:
        """The frames that answer one client frame, in order."""
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            yield _notice('invalid: not JSON; send a NIP-01 message such as ["REQ", ...]')
            return
        if type(message) is not list or not message or type(message[0]) is not str:
            yield _notice("invalid: a message is a JSON array starting with its type")
            return
        verb = message[0]
        if verb == "REQ":
            async for frame in self._req(message):
                yield frame
        elif verb == "CLOSE":
            if len(message) == 2 and type(message[1]) is str:
                self.open.discard(message[1])
            else:
                yield _notice('invalid: CLOSE takes one subscription id: ["CLOSE", <id>]')
        elif verb == "EVENT":
            event = message[1] if len(message) == 2 else None
            event_id = event.get("id") if type(event) is dict else None
            if type(event_id) is str:
                yield _frame("OK", event_id, False, BLOCKED)
            else:
                yield _notice("invalid: EVENT takes one event object with an id; " + BLOCKED)
        else:
            yield _notice(f"unsupported: {verb!r}; this relay serves REQ and CLOSE")

    async def _req(self, message: list[Any]) -> AsyncIterator[str]:
        sub = message[1] if len(message) > 1 else None
        if type(sub) is not str or not 0 < len(sub) <= _MAX_SUBSCRIPTION_ID:
            yield _notice(
                f"invalid: a REQ's subscription id is a string of 1 to {_MAX_SUBSCRIPTION_ID} "
                "characters"
            )
            return
        objects = message[2:]
        refusal = self._refusal(objects)
        filters: list[Filter] = []
        if refusal is None:
            try:
                filters = [checked_filter(obj, self._limits.filters) for obj in objects]
            except InvalidFilter as exc:
                refusal = f"invalid: {exc}"
        if (
            refusal is None
            and sub not in self.open
            and len(self.open) >= self._limits.max_subscriptions
        ):
            refusal = (
                f"error: {self._limits.max_subscriptions} subscriptions are open on this "
                "connection; CLOSE one first"
            )
        if refusal is None and not await self._allow():
            refusal = "rate-limited: too many REQs from your address; wait and ask again"
        if refusal is not None:
            self.open.discard(sub)
            yield _frame("CLOSED", sub, refusal)
            return
        self.open.add(sub)
        sent: set[str] = set()
        try:
            for flt in filters:
                wanted = self._limits.filters.default_limit if flt.limit is None else flt.limit
                limit = min(wanted, self._limits.filters.max_limit)
                for event in await self._source.events(flt, limit=limit):
                    if event.id not in sent:
                        sent.add(event.id)
                        yield f'["EVENT",{orjson.dumps(sub).decode()},{event_to_json(event)}]'
        except ArchiveError as exc:
            self.open.discard(sub)
            yield _frame("CLOSED", sub, f"error: {exc}")
            return
        yield _frame("EOSE", sub)

    def _refusal(self, objects: list[Any]) -> str | None:
        if not objects:
            return "invalid: a REQ needs at least one filter"
        if len(objects) > self._limits.max_filters:
            return f"invalid: at most {self._limits.max_filters} filters per REQ"
        if not all(type(obj) is dict for obj in objects):
            return "invalid: every filter is a JSON object"
        return None


def _frame(*parts: Any) -> str:
    return orjson.dumps(list(parts)).decode()


def _notice(text: str) -> str:
    return _frame("NOTICE", text)
