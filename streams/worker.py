"""Runs the Faust app as `bigbrotr worker`, with a shutdown that cannot hang.

Faust's own stop can stall (waiting on a consumer that never drains). On SIGTERM or SIGINT we ask
it to stop and start a watchdog: past `streams.shutdown_timeout_s` the process exits hard. That is
safe: the broker aborts the unfinished transaction and the record is processed again on the next
start (see `streams.transactions`).
"""

from __future__ import annotations

import logging
import os
import threading

import faust

from bigbrotr.config import Settings
from streams.app import build_app

log = logging.getLogger("bigbrotr.worker")


class _Worker(faust.Worker):
    shutdown_timeout_s: float = 8.0

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


def run_worker(settings: Settings) -> None:
    """Block until stopped by a signal."""
    settings.streams.data_dir.mkdir(parents=True, exist_ok=True)
    app = build_app(settings)
    worker = _Worker(app, loglevel=settings.log_level, quiet=True)
    worker.shutdown_timeout_s = settings.streams.shutdown_timeout_s
    worker.execute_from_commandline()
