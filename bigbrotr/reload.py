"""SIGHUP: read the settings again and apply those that can change without a restart.

Only the keys in `RELOADABLE` (relay lists, rates, limits) are taken from the new file; every
other difference is named in the log as needing a restart, and the running value is kept. A file
that no longer validates changes nothing and says why.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bigbrotr.config import Settings, load_settings, masked
from bigbrotr.errors import ConfigError
from bigbrotr.observability.metrics import RELOADS

log = logging.getLogger("bigbrotr.reload")

RELOADABLE: dict[str, tuple[str, ...]] = {
    "connectors": ("allow", "page_size"),
    "monitor": (
        "interval_s",
        "concurrency",
        "probe_timeout_s",
        "open_timeout_s",
        "read_timeout_s",
        "write_timeout_s",
        "nip11_timeout_s",
        "nip11_max_bytes",
        "publish_relays",
    ),
    "finder": (
        "http_sources",
        "http_timeout_s",
        "http_max_bytes",
        "http_refresh_s",
        "interval_s",
        "probe_concurrency",
        "probe_timeout_s",
        "max_attempts",
        "retry_delay_s",
        "retry_backoff",
        "retry_max_delay_s",
    ),
    "sink": ("batch_size", "batch_max_wait_s"),
    "sync": (
        "max_concurrent",
        "max_concurrent_per_network",
        "priority_relays",
        "history_since",
        "first_chunk_s",
        "chunk_timeout_s",
        "connect_timeout_s",
        "live_session_s",
        "live_backlog_s",
        "backoff_base_s",
        "backoff_max_s",
        "breaker_failures",
        "breaker_cooldown_s",
        "shutdown_timeout_s",
        "negentropy_frame_bytes",
        "negentropy_max_rounds",
        "negentropy_max_ids",
        "negentropy_answer_timeout_s",
        "negentropy_timeout_s",
    ),
    "streams": ("max_event_bytes", "max_content_bytes", "max_tags", "max_future_skew_s"),
    "status": ("slow_rtt_ms", "probe_window_s", "max_scan_records"),
}


def merge_reloadable(
    running: Settings, loaded: Settings
) -> tuple[Settings, dict[str, tuple[Any, Any]], list[str]]:
    """`running` with the reloadable keys of `loaded`; what changed; what needs a restart."""
    changed: dict[str, tuple[Any, Any]] = {}
    updates: dict[str, Any] = {}
    for section, keys in RELOADABLE.items():
        old, new = getattr(running, section), getattr(loaded, section)
        moved = {key: getattr(new, key) for key in keys if getattr(old, key) != getattr(new, key)}
        if moved:
            updates[section] = old.model_copy(update=moved)
            changed.update({f"{section}.{k}": (getattr(old, k), v) for k, v in moved.items()})
    merged = running.model_copy(update=updates)
    restart = _differences(masked(merged), masked(loaded))
    return merged, changed, restart


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [d for k in keys for d in _differences(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [prefix.rstrip(".")] if old != new else []


def reload_on_sighup(
    config: Path | None, current: Callable[[], Settings], apply: Callable[[Settings], None]
) -> None:
    """On SIGHUP, read `config` again and `apply` the merged settings; call in the event loop."""

    def reload() -> None:
        try:
            loaded = load_settings(config)
        except ConfigError as exc:
            RELOADS.labels("failed").inc()
            log.error("SIGHUP: settings not reloaded, the running ones stay: %s", exc)
            return
        merged, changed, restart = merge_reloadable(current(), loaded)
        apply(merged)
        RELOADS.labels("applied").inc()
        if changed:
            shown = "; ".join(f"{key}: {old!r} -> {new!r}" for key, (old, new) in changed.items())
            log.info("SIGHUP: reloaded %s", shown)
        else:
            log.info("SIGHUP: reloaded; no reloadable setting changed")
        if restart:
            log.warning("SIGHUP: not reloaded, these need a restart: %s", ", ".join(restart))

    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)
