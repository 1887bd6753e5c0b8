"""The worker subscribes only once the broker lists the topics it just created (real broker): a
topic left out of the first assignment used to crash the worker's first commit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaClient

from streams.metadata import until_in_metadata
from tests.support.topics import create_topic

pytestmark = pytest.mark.integration

CREATE_AFTER_S = 1.0


@pytest.fixture
async def client(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaClient]:
    client = AIOKafkaClient(bootstrap_servers=kafka_bootstrap)
    await client.bootstrap()
    try:
        yield client
    finally:
        await client.close()


async def test_waits_until_a_topic_created_meanwhile_has_every_leader(
    client: AIOKafkaClient, kafka_bootstrap: str, topic_prefix: str
) -> None:
    name = f"{topic_prefix}late"

    async def create_later() -> None:
        await asyncio.sleep(CREATE_AFTER_S)
        await asyncio.to_thread(create_topic, kafka_bootstrap, name, 3)

    loop = asyncio.get_running_loop()
    started = loop.time()
    creator = asyncio.create_task(create_later())
    try:
        missing = await until_in_metadata(client, [name], timeout_s=60)
    finally:
        await creator
    assert missing == []
    assert loop.time() - started >= CREATE_AFTER_S, "it returned before the topic existed"
    cluster = await client.fetch_all_metadata()
    assert cluster.available_partitions_for_topic(name) == {0, 1, 2}


async def test_gives_up_after_its_timeout_and_names_what_is_missing(
    client: AIOKafkaClient, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    never = f"{topic_prefix}never-created"
    caplog.set_level(logging.WARNING, logger="bigbrotr.worker")
    missing = await until_in_metadata(client, [never], timeout_s=0.5)
    assert missing == [never]
    assert f"still lacks {never}; subscribing anyway" in caplog.text
