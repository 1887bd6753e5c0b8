"""Runs `bigbrotr worker` as a real process, configured only by the given settings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from bigbrotr.config import Settings
from tests.support.cli import BIGBROTR


def worker_env(settings: Settings) -> dict[str, str]:
    """The caller's `BIGBROTR_*` variables are dropped; topics, prefix and data dir are passed."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BIGBROTR_")}
    return {
        **clean,
        "BIGBROTR_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "BIGBROTR_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
        "BIGBROTR_KAFKA__TOPICS": json.dumps(
            {name: topic.model_dump() for name, topic in settings.kafka.topics.items()}
        ),
        "BIGBROTR_STREAMS__DATA_DIR": str(settings.streams.data_dir),
        "BIGBROTR_LOG_LEVEL": os.environ.get("WORKER_LOG_LEVEL", "WARNING"),
    }


class WorkerProcesses:
    """Starts worker processes, each logging to its own file; kills what is left at the end."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.env = worker_env(settings)
        self.logs = logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = (self.logs / f"worker-{len(self.started)}.log").open("wb")
        process = subprocess.Popen(
            [*BIGBROTR, "worker"], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        self.started.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes], timeout_s: float = 30) -> int:
        """SIGTERM, as an operator stops it; the exit status."""
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=timeout_s)

    def log(self, index: int = -1) -> str:
        return (self.logs / f"worker-{index % len(self.started)}.log").read_text(errors="replace")

    def kill_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait()
