"""History sync planning: the pure side of the synchronizer (which REQ next, what is proven)."""

from connectors.sync.cursor import (
    NOT_PULLED,
    Coverage,
    Gap,
    coverage_from_record,
    cursor_record,
)
from connectors.sync.plan import COMMON_KINDS, Page, RelayCap, SyncPolicy, WindowPlanner

__all__ = [
    "COMMON_KINDS",
    "NOT_PULLED",
    "Coverage",
    "Gap",
    "Page",
    "RelayCap",
    "SyncPolicy",
    "WindowPlanner",
    "coverage_from_record",
    "cursor_record",
]
