"""The NIP-01 websocket client the finder, monitor and synchronizer share.

`RelayClient(url, limits=..., allow=..., proxy=..., secret_key=...)` opens one relay's socket on
first use; `client.subscribe(filters)` runs a REQ as an async iterator of `ReceivedEvent`s (exact
event text as received) and `client.fetch(filters)` collects one; `client.reconcile(filter, items)`
runs a NIP-77 reconciliation. Every subscription ends with a
`SubscriptionResult` whose `EndReason` says why, whatever the relay does.
"""

from connectors.client.connection import RelayClient
from connectors.client.frames import (
    AuthFrame,
    ClosedFrame,
    EoseFrame,
    EventFrame,
    Garbage,
    NegErrFrame,
    NegMsgFrame,
    NoticeFrame,
    OkFrame,
    RelayMessage,
    parse_frame,
)
from connectors.client.limits import ClientLimits
from connectors.client.outcome import EndReason, Fetched, ReceivedEvent, SubscriptionResult
from connectors.client.reconciliation import NegEnd, NegentropyLimits, Reconciliation
from connectors.client.subscription import AUTH_REQUIRED_PREFIX, Subscription

__all__ = [
    "AUTH_REQUIRED_PREFIX",
    "AuthFrame",
    "ClientLimits",
    "ClosedFrame",
    "EndReason",
    "EoseFrame",
    "EventFrame",
    "Fetched",
    "Garbage",
    "NegEnd",
    "NegErrFrame",
    "NegMsgFrame",
    "NegentropyLimits",
    "NoticeFrame",
    "OkFrame",
    "ReceivedEvent",
    "Reconciliation",
    "RelayClient",
    "RelayMessage",
    "Subscription",
    "SubscriptionResult",
    "parse_frame",
]
