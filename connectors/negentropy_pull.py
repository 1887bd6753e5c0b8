"""Pulls one time window of a relay by NIP-77 set reconciliation, where the relay speaks it.

The archive's ids for the relay and window (`KnownIds`) are reconciled with the relay's set; the
ids only the relay has are fetched with `ids` filters in chunks no larger than a page, and what
arrives is handed to the caller to publish. The window is proven complete only when every step
succeeded and every listed id was served; otherwise the caller pages the window as before, so a
gap is recorded only where neither method proves completeness.

Whether a relay speaks NIP-77 is learned from its first answer and remembered for the process; a
relay that answers NEG-ERR speaks it but refused this window, so it is asked again for the next
window. Relays cap the set they reconcile at once (rust-nostr's LocalRelay answers "rate-limited:
too many negentropy items", strfry "blocked: too many query results"), and a busy relay's window
easily holds more: a window refused as too big, or past our own `max_ids`, is reconciled again
in halves, down to single seconds and at most `MAX_PARTS` parts, before it is left to paging,
which fetches every event of the window again.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

from bigbrotr.config import Settings, SyncSettings
from bigbrotr.errors import ArchiveError
from bigbrotr.nostr import Filter
from connectors.client import (
    EndReason,
    Fetched,
    NegEnd,
    NegentropyLimits,
    Reconciliation,
    RelayClient,
)
from connectors.known_ids import DatabaseKnownIds, KnownIds
from connectors.negentropy import ItemSet

Publish = Callable[[Fetched], Awaitable[None]]
"""Publishes what one REQ brought; returns once the events are handed to the producer."""

NOT_NIP77 = "the relay does not speak NIP-77"


MAX_PARTS = 64
"""Parts one window may be split into before it is paged: a relay that refuses every size as
too big costs at most this many NEG-OPENs more."""
_TOO_BIG = ("too many", "too big", "too large")


@dataclass(slots=True)
class WindowPull:
    """What pulling one window by negentropy did; `proved` says the window is complete."""

    proved: bool
    reason: str = ""
    reconciliations: list[Reconciliation] = field(default_factory=list)
    requests: int = 0
    fetched: int = 0
    end_reasons: Counter[EndReason] = field(default_factory=Counter)


class NegentropyPuller:
    """One per process: the archive's ids, the bounds, and which relays speak NIP-77."""

    def __init__(self, known_ids: KnownIds, limits: NegentropyLimits | None = None) -> None:
        self._known_ids = known_ids
        self.limits = limits or NegentropyLimits()
        self._support: dict[str, bool] = {}

    def supports(self, relay_url: str) -> bool | None:
        """Whether the relay speaks NIP-77, None until it has answered once."""
        return self._support.get(relay_url)

    async def pull(
        self,
        client: RelayClient,
        since: int,
        until: int,
        *,
        base: Filter | None,
        chunk: int,
        publish: Publish,
    ) -> WindowPull:
        """Reconcile seconds `since..until` (inclusive) and fetch what the archive lacks; a part
        too big to reconcile at once is split in halves, newest first."""
        window = WindowPull(False)
        parts = [(since, until)]
        while parts:
            low, high = parts.pop()
            reconciliation = await self._reconcile(client, low, high, base, window)
            if reconciliation is None:
                return window
            if reconciliation.end is NegEnd.DONE:
                chunk = await _fetch_ids(client, reconciliation.need, chunk, publish, window)
                if window.reason:
                    return window
            elif (
                too_big_for_one_set(reconciliation)
                and low < high
                and len(window.reconciliations) + len(parts) + 2 <= MAX_PARTS
            ):
                middle = (low + high) // 2
                parts += [(low, middle), (middle + 1, high)]
            else:
                window.reason = f"negentropy {reconciliation.end}: {reconciliation.detail}"
                if len(window.reconciliations) > 1:
                    window.reason += f" (seconds {low}..{high}, after splitting the window)"
                return window
        window.proved = True
        return window

    async def _reconcile(
        self, client: RelayClient, since: int, until: int, base: Filter | None, window: WindowPull
    ) -> Reconciliation | None:
        """One part's reconciliation, kept in `window`; None (the reason in `window`) when it
        could not be tried."""
        url = client.url
        if self._support.get(url) is False:
            window.reason = NOT_NIP77
            return None
        try:
            items = ItemSet(await self._known_ids(url, since, until))
        except ArchiveError as exc:
            window.reason = str(exc)
            return None
        flt = replace(base or Filter(), since=since, until=until)
        reconciliation = await client.reconcile(flt, items, self.limits)
        if reconciliation.supported is not None:
            self._support[url] = reconciliation.supported
        window.reconciliations.append(reconciliation)
        return reconciliation


def too_big_for_one_set(reconciliation: Reconciliation) -> bool:
    """Whether a smaller window may reconcile where this one did not."""
    if reconciliation.end is NegEnd.MAX_IDS:
        return True
    detail = reconciliation.detail.lower()
    return reconciliation.end is NegEnd.REFUSED and any(words in detail for words in _TOO_BIG)


async def _fetch_ids(
    client: RelayClient, ids: list[str], chunk: int, publish: Publish, window: WindowPull
) -> int:
    """Fetch `ids` by `ids` filters, at most `chunk` a request; the chunk size that worked.
    `window.reason` says why when some did not come.

    A relay that sends fewer than asked (its cap is lower) gets smaller chunks from then on; an
    id it does not send even alone is not served, and the window is left unproven.
    """
    pending = deque(ids)
    unserved = 0
    while pending:
        batch = [pending.popleft() for _ in range(min(chunk, len(pending)))]
        fetched = await client.fetch([Filter(ids=batch, limit=len(batch))])
        window.requests += 1
        window.end_reasons[fetched.result.end_reason] += 1
        window.fetched += len(fetched.events)
        await publish(fetched)
        if fetched.result.end_reason is not EndReason.EOSE:
            result = fetched.result
            window.reason = f"fetching ids: {result.end_reason}: {result.detail}"
            return chunk
        served = {received.event_id for received in fetched.events}
        missing = [event_id for event_id in batch if event_id not in served]
        if not missing:
            continue
        if len(batch) == 1:
            unserved += 1
            continue
        chunk = max(1, len(batch) - len(missing)) if len(missing) < len(batch) else len(batch) // 2
        pending.extendleft(reversed(missing))
    if unserved:
        window.reason = f"{unserved} id(s) listed by NIP-77 were not served by an ids filter"
    return chunk


def negentropy_limits(sync: SyncSettings) -> NegentropyLimits:
    return NegentropyLimits(
        frame_size_limit=sync.negentropy_frame_bytes,
        max_rounds=sync.negentropy_max_rounds,
        max_ids=sync.negentropy_max_ids,
        answer_timeout=sync.negentropy_answer_timeout_s,
        total_timeout=sync.negentropy_timeout_s,
    )


@asynccontextmanager
async def negentropy_puller(settings: Settings) -> AsyncIterator[NegentropyPuller | None]:
    """The process's puller over the archive database; None when `sync.negentropy` is off."""
    if not settings.sync.negentropy:
        yield None
        return
    known = DatabaseKnownIds(settings.database.dsn())
    try:
        yield NegentropyPuller(known, negentropy_limits(settings.sync))
    finally:
        await known.aclose()
