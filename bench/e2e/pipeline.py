"""The archiving pipeline of one run: `bigbrotr sync`, `worker` and `sink` as real processes under
the real supervisor (`bigbrotr run`'s), on settings of the run's own.

The run's settings (a fresh topic prefix, a fresh database, the loopback relays on the allow-list,
a scratch RocksDB folder, free metrics ports) reach the children as environment variables, as
`bigbrotr demo` hands them over. A child that exits, or is killed, is restarted by the supervisor
after `run.restart_base_s`, doubling up to `run.restart_max_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from confluent_kafka import ConsumerGroupState, KafkaException

from bigbrotr.config import Settings
from bigbrotr.demo.run import applied, as_environment
from bigbrotr.supervisor import Supervisor, main_job
from bigbrotr.topics import new_admin

COMPONENTS = ("sync", "worker", "sink")


def run_changes(
    settings: Settings,
    *,
    label: str,
    database_url: str,
    allow: list[str],
    workdir: Path,
    partitions: int,
    bootstrap: str | None = None,
    negentropy: bool = True,
) -> dict[str, dict[str, Any]]:
    """The run's settings by section: fresh topics under `<prefix><label>.<random>.`, on the
    broker at `bootstrap` when given; `negentropy` False makes the synchronizer page."""
    prefix = f"{settings.kafka.topic_prefix}{label}.{uuid.uuid4().hex[:8]}."
    topics = {
        name: topic.model_copy(update={"partitions": partitions})
        for name, topic in settings.kafka.topics.items()
    }
    kafka: dict[str, Any] = {"topic_prefix": prefix, "topics": topics}
    if bootstrap is not None:
        kafka["bootstrap_servers"] = bootstrap
    return {
        "kafka": kafka,
        "database": {"url": database_url},
        "connectors": {"allow": allow},
        "sync": {"negentropy": negentropy},
        "streams": {"data_dir": workdir / "streams"},
        "metrics": {"ports": dict.fromkeys(COMPONENTS, 0)},
        "run": {"components": list(COMPONENTS), "restart_base_s": 0.5, "restart_max_s": 2.0},
    }


class Pipeline:
    """The supervised children of one run; `pids` says which process runs each now."""

    def __init__(self, settings: Settings, env: Mapping[str, str], log: Path) -> None:
        self.settings = settings
        self._env = dict(env)
        self.log = log
        self._supervisor: Supervisor | None = None

    @property
    def pids(self) -> dict[str, int]:
        return self._supervisor.pids if self._supervisor is not None else {}

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Pipeline]:
        """The children run inside the block; at its end each gets SIGTERM (then SIGKILL)."""
        with self.log.open("a") as output:
            self._supervisor = main_job(self.settings, None, self._env, output=output)
            task = asyncio.create_task(self._supervisor.run())
            try:
                yield self
            finally:
                self._supervisor.stop()
                await task
                self._supervisor = None

    async def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Until every child runs and each component's consumer group is stable with its
        partitions assigned, so that start-up and the first rebalance fall outside a measurement."""
        await self.wait_running(timeout_s)
        kafka = self.settings.kafka
        groups = {
            kafka.topic_prefix + self.settings.sync.group_id: kafka.topic("relays"),
            kafka.topic_prefix + self.settings.streams.app_id: kafka.topic("events.raw"),
            kafka.topic_prefix + self.settings.sink.group_id: kafka.topic("events"),
        }
        async with asyncio.timeout(timeout_s):
            while True:
                if await asyncio.to_thread(_groups_stable, kafka.bootstrap_servers, groups):
                    return
                await asyncio.sleep(0.5)

    async def wait_running(self, timeout_s: float = 60.0) -> dict[str, int]:
        """Until every component has a process (after a kill the supervisor starts a new one)."""
        async with asyncio.timeout(timeout_s):
            while True:
                pids = self.pids
                if set(pids) == set(COMPONENTS):
                    return pids
                await asyncio.sleep(0.1)


def pipeline_for(
    settings: Settings, changes: Mapping[str, Mapping[str, Any]], log: Path
) -> Pipeline:
    return Pipeline(applied(settings, changes), as_environment(changes), log)


def delete_topics(settings: Settings) -> None:
    """Every topic under the run's prefix, including those the worker made itself."""
    admin = new_admin(settings.kafka.bootstrap_servers)
    prefix = settings.kafka.topic_prefix
    ours = [name for name in admin.list_topics(timeout=10).topics if name.startswith(prefix)]
    if ours:
        for future in admin.delete_topics(ours, operation_timeout=30).values():
            future.result(30)


def _groups_stable(bootstrap: str, groups: Mapping[str, str]) -> bool:
    """Whether each group is stable with a member holding a partition of its topic."""
    admin = new_admin(bootstrap)
    try:
        described = admin.describe_consumer_groups(list(groups))
        for group, topic in groups.items():
            description = described[group].result(timeout=10)
            holds = any(
                tp.topic == topic
                for member in description.members
                for tp in member.assignment.topic_partitions
            )
            if description.state != ConsumerGroupState.STABLE or not holds:
                return False
    except (KafkaException, TimeoutError):  # a group's coordinator is not there yet
        return False
    return True
