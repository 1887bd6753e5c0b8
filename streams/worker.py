"""Runs the Faust app as `bigbrotr worker`, with a shutdown that cannot hang.

Faust's own stop can stall (waiting on a consumer that never drains). On SIGTERM or SIGINT we ask
it to stop and start a watchdog: past `streams.shutdown_timeout_s` the process exits hard. That is
safe: the broker aborts the unfinished transaction and the record is processed again on the next
start (see `streams.transactions`). SIGHUP reads the settings file again and hands the validator
its new limits (`streams.max_*`, `max_future_skew_s`) from the next batch on.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import faust

from bigbrotr.config import Settings
from bigbrotr.reload import reload_on_sighup
from streams.app import build_app
from streams.validate import BatchValidator, Limits

log = logging.getLogger("bigbrotr.worker")


class _Worker(faust.Worker):
    shutdown_timeout_s: float = 8.0
    on_signals_installed: Callable[[], None] | None = None

    def install_signal_handlers(self) -> None:
        """Faust's handlers, then ours: called with the worker's event loop running."""
        super().install_signal_handlers()
        if self.on_signals_installed is not None:
            self.on_signals_installed()

    def _arm_watchdog(self) -> None:
        def expire() -> None:
            log.warning("worker did not stop within %.0fs; exiting now", self.shutdown_timeout_s)
            logging.shutdown()
            os._exit(0)

        timer = threading.Timer(self.shutdown_timeout_s, expire)
        timer.daemon = True
        timer.start()

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        """No terminal spinner: to feed it, Faust lowers the root logger to DEBUG, and every
        debug record of aiokafka (several per record processed) was then built and handled."""
        self.spinner = None
        super().on_setup_root_logger(logger, level)

    def _on_sigterm(self) -> None:
        self._arm_watchdog()
        super()._on_sigterm()

    def _on_sigint(self) -> None:
        self._arm_watchdog()
        super()._on_sigint()


def run_worker(settings: Settings, config: Path | None = None) -> None:
    """Block until stopped by a signal; SIGHUP reads `config` again."""
    settings.streams.data_dir.mkdir(parents=True, exist_ok=True)
    validator = BatchValidator(Limits.from_settings(settings.streams))
    app = build_app(settings, validator=validator)
    worker = _Worker(app, loglevel=settings.log_level, quiet=True)
    worker.shutdown_timeout_s = settings.streams.shutdown_timeout_s
    running = [settings]

    def reload(new: Settings) -> None:
        running[0] = new
        validator.limits = Limits.from_settings(new.streams)

    worker.on_signals_installed = lambda: reload_on_sighup(config, lambda: running[0], reload)
    worker.execute_from_commandline()
