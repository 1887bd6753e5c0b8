"""The NIP-77 window puller without a relay: an unreadable archive leaves the window to paging,
with the reason, before any I/O, and which refusals split a window. (Relays: tests/integration.)"""

from __future__ import annotations

import pytest

from bigbrotr.errors import ArchiveError
from connectors.client import Fetched, NegEnd, Reconciliation, RelayClient
from connectors.negentropy import Item
from connectors.negentropy_pull import NegentropyPuller, too_big_for_one_set


async def _no_publish(fetched: Fetched) -> None:
    raise AssertionError("nothing may be published")


async def _unreadable(relay_url: str, since: int, until: int) -> list[Item]:
    raise ArchiveError("cannot read the archived ids: connection refused")


async def test_an_unreadable_archive_leaves_the_window_to_paging() -> None:
    puller = NegentropyPuller(_unreadable)
    client = RelayClient("ws://127.0.0.1:9")  # never dialled
    window = await puller.pull(client, 0, 10, base=None, chunk=50, publish=_no_publish)
    assert not window.proved
    assert "cannot read the archived ids" in window.reason
    assert window.reconciliations == []
    assert not client.connected


@pytest.mark.parametrize(
    ("end", "detail", "split"),
    [
        (NegEnd.REFUSED, "NEG-ERR: rate-limited: too many negentropy items", True),  # LocalRelay
        (NegEnd.REFUSED, "NEG-ERR: blocked: too many query results", True),  # strfry
        (NegEnd.REFUSED, "NEG-ERR: blocked: this query is too big to handle", True),  # NIP-77
        (NegEnd.MAX_IDS, "more than 100000 ids differ after 3", True),  # our own bound
        (NegEnd.REFUSED, "NEG-ERR: error: shutting down", False),
        (NegEnd.REFUSED, "CLOSED: auth-required: we only serve members", False),
        (NegEnd.TIMEOUT, "still reconciling after 120s", False),
        (NegEnd.MAX_ROUNDS, "not reconciled after 64 rounds", False),
    ],
)
def test_only_a_part_too_big_for_one_set_is_split(end: NegEnd, detail: str, split: bool) -> None:
    reconciliation = Reconciliation(end, detail, [], 0, 1, True, 0, 0)
    assert too_big_for_one_set(reconciliation) is split
