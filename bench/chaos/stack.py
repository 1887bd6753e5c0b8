"""A private Kafka broker (KRaft) and PostgreSQL server for the chaos run, on free loopback ports
in a folder of the run's own: restarting them disturbs nobody, unlike the shared dev stack.

They are the dev stack's own classes (`bigbrotr.devstack`), so the same Kafka release and the
same Debian PostgreSQL. The Kafka jars come from the dev stack's folder when it has them, else
from an earlier chaos run's copy, else Maven resolves them (and a copy is kept for next time).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bigbrotr.config import DevStackSettings
from bigbrotr.devstack.kafka import KafkaBroker
from bigbrotr.devstack.postgres import PostgresServer
from bigbrotr.devstack.process import free_port


class PrivateStack:
    def __init__(self, root: Path, dev: DevStackSettings) -> None:
        self.settings = DevStackSettings(
            state_dir=root,
            kafka_version=dev.kafka_version,
            kafka_port=free_port(),
            kafka_controller_port=free_port(),
            kafka_heap="512m",
            postgres_port=free_port(),
            postgres_bin_dir=dev.postgres_bin_dir,
        )
        self.kafka = KafkaBroker(self.settings)
        self.postgres = PostgresServer(self.settings)
        jars = f"libs-{dev.kafka_version}"
        self._jar_sources = [dev.state_dir / "kafka" / jars, dev.state_dir / "chaos" / jars]

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap

    def up(self) -> None:
        found = next((p for p in self._jar_sources if any(p.glob("kafka_2.13-*.jar"))), None)
        if found is not None:
            self.kafka.root.mkdir(parents=True, exist_ok=True)
            self.kafka.libs.symlink_to(found, target_is_directory=True)
        self.postgres.up()
        self.kafka.up()
        if found is None:
            shutil.copytree(self.kafka.libs, self._jar_sources[-1], dirs_exist_ok=True)

    def restart_kafka(self) -> None:
        self.kafka.down()
        self.kafka.up()

    def restart_postgres(self) -> None:
        self.postgres.down()
        self.postgres.up()

    def down(self) -> None:
        try:
            self.kafka.down()
        finally:
            self.postgres.down()
            shutil.rmtree(self.postgres.root, ignore_errors=True)


@asynccontextmanager
async def private_stack(root: Path, dev: DevStackSettings) -> AsyncIterator[PrivateStack]:
    """Both servers up inside the block (started in a thread: they block, and the PostgreSQL
    start runs an event loop of its own), stopped and removed after it."""
    stack = PrivateStack(root, dev)
    try:
        await asyncio.to_thread(stack.up)
        yield stack
    finally:
        await asyncio.to_thread(stack.down)
