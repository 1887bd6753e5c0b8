"""Session fixtures that hand every test a real Kafka broker and a real PostgreSQL server.

Where the services come from, first match wins:
1. `KAFKA_BOOTSTRAP_SERVERS` / `DATABASE_URL` from the environment (CI or your own servers);
2. the local stack of `bigbrotr dev up` (reused if it runs, else started and stopped afterwards);
3. testcontainers, when a Docker engine answers.
Each test gets its own topic prefix and its own fresh database, so tests never share state.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from hypothesis import settings as hypothesis_settings

from bigbrotr.config import KafkaSettings, Settings, load_settings
from bigbrotr.errors import StackError
from bigbrotr.topics import new_admin

TESTS_DIR = Path(__file__).parent

# The long hostile-input run: `pytest -m hostile --hypothesis-profile=long` (README, Tests).
hypothesis_settings.register_profile("long", max_examples=20_000)


@dataclass(frozen=True)
class Services:
    kafka_bootstrap: str
    postgres_url: str
    origin: str


def _docker_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    result = subprocess.run([docker, "info"], capture_output=True, timeout=20, check=False)
    return result.returncode == 0


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    kafka_env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    postgres_env = os.environ.get("DATABASE_URL")
    if kafka_env and postgres_env:
        yield Services(kafka_env, postgres_env, "environment")
        return

    from bigbrotr.devstack import DevStack
    from bigbrotr.devstack.process import port_open

    settings = load_settings()
    stack = DevStack(settings.dev)
    others_run = port_open("127.0.0.1", settings.dev.kafka_port) and port_open(
        "127.0.0.1", settings.dev.postgres_port
    )
    if others_run and not any(component.running for component in stack.status()):
        # Another checkout's stack (or the user's own servers) holds the configured ports.
        yield Services(settings.kafka.bootstrap_servers, settings.database.url, "running")
        return
    try:
        components = stack.up()
    except StackError as exc:
        if not _docker_answers():
            pytest.fail(f"no Kafka/PostgreSQL for the tests: {exc}", pytrace=False)
        yield from _testcontainers()
        return
    kafka, postgres = components
    try:
        yield Services(kafka_env or kafka.address, postgres_env or postgres.address, "local stack")
    finally:
        if kafka.started_now:
            stack.kafka.down()
        if postgres.started_now:
            stack.postgres.down()


def _testcontainers() -> Iterator[Services]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    with (
        KafkaContainer().with_kraft() as kafka,
        PostgresContainer("postgres:16", driver=None) as postgres,
    ):
        yield Services(
            kafka.get_bootstrap_server(), postgres.get_connection_url(), "testcontainers"
        )


@pytest.fixture(scope="session")
def kafka_bootstrap(services: Services) -> str:
    return services.kafka_bootstrap


@pytest.fixture(scope="session")
def postgres_url(services: Services) -> str:
    """A server URL with the right to create databases; tests should use `database_url`."""
    return services.postgres_url


@pytest.fixture
def topic_prefix(request: pytest.FixtureRequest) -> Iterator[str]:
    """Topic names no other test (or earlier run) uses; deleted after the test, so the broker's
    open files do not grow with every test ever run against it."""
    prefix = f"test.{uuid.uuid4().hex[:12]}."
    yield prefix
    if "kafka_bootstrap" in request.fixturenames:
        _delete_topics(request.getfixturevalue("kafka_bootstrap"), prefix)


def _delete_topics(bootstrap: str, prefix: str) -> None:
    admin = new_admin(bootstrap)
    names = [name for name in admin.list_topics(timeout=10).topics if name.startswith(prefix)]
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            future.result(30)


@pytest.fixture
async def database_url(postgres_url: str) -> AsyncIterator[str]:
    """A fresh, empty database on the test server, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield urlunsplit(urlsplit(postgres_url)._replace(path=f"/{name}"))
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def settings(kafka_bootstrap: str, topic_prefix: str, database_url: str) -> Settings:
    """Settings wired to the test services, with isolated topics and database."""
    return load_settings(
        kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": topic_prefix},
        database={"url": database_url},
    )


@pytest.fixture
def kafka_settings(kafka_bootstrap: str, topic_prefix: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=topic_prefix)


LOG_TAIL_LINES = 100
LOG_FIRST_ERROR_LINES = 40
_ERROR_MARKS = ("ERROR", "CRITICAL", "Traceback")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test shows, for every log its processes wrote under `tmp_path`, where the first
    error began and how the log ended: CI keeps nothing else, and a process's first error is
    usually buried under the cascade of its shutdown."""
    report: pytest.TestReport = yield
    tmp_path = getattr(item, "funcargs", {}).get("tmp_path")
    if report.when == "call" and report.failed and isinstance(tmp_path, Path):
        for log in sorted(tmp_path.rglob("*.log")):
            data = log.read_bytes()
            if not data or b"\0" in data[-4096:]:  # empty, or binary (RocksDB's write-ahead logs)
                continue
            lines = data.decode(errors="replace").splitlines()
            name = log.relative_to(tmp_path)
            first = next(
                (n for n, line in enumerate(lines) if any(m in line for m in _ERROR_MARKS)), None
            )
            if first is not None and first < len(lines) - LOG_TAIL_LINES:
                shown = lines[first : first + LOG_FIRST_ERROR_LINES]
                report.sections.append((f"{name}: first error, line {first + 1}", "\n".join(shown)))
            tail = lines[-LOG_TAIL_LINES:]
            report.sections.append((f"{name} (last {len(tail)} lines)", "\n".join(tail)))
    return report
