"""The NIP-77 window puller without a relay: an unreadable archive leaves the window to paging,
with the reason, before any I/O. (Relays that do not speak NIP-77: tests/integration.)"""

from __future__ import annotations

from bigbrotr.errors import ArchiveError
from connectors.client import Fetched, RelayClient
from connectors.negentropy import Item
from connectors.negentropy_pull import NegentropyPuller


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
