"""`bigbrotr dev`: a private stack on other ports proves up, up, status, down and the errors."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bigbrotr.config import DevStackSettings
from bigbrotr.devstack import DevStack
from bigbrotr.devstack.kafka import KafkaBroker
from bigbrotr.devstack.process import free_port, port_open
from bigbrotr.errors import StackError

pytestmark = pytest.mark.integration


@pytest.fixture
def private_settings(tmp_path: Path) -> DevStackSettings:
    state = tmp_path / "state"
    state.mkdir()
    return DevStackSettings(
        state_dir=state,
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        postgres_port=free_port(),
        kafka_heap="256m",
    )


@pytest.fixture
def private_stack(private_settings: DevStackSettings) -> Iterator[DevStack]:
    stack = DevStack(private_settings)
    yield stack
    stack.down()
    shutil.rmtree(stack.postgres.root, ignore_errors=True)


def test_up_twice_status_then_down_leaves_nothing(
    private_stack: DevStack, private_settings: DevStackSettings
) -> None:
    first = private_stack.up()
    assert [c.started_now for c in first] == [True, True]
    assert all(c.running for c in first)
    second = private_stack.up()
    assert [c.started_now for c in second] == [False, False]
    assert [c.running for c in private_stack.status()] == [True, True]

    assert sorted(private_stack.down()) == ["kafka", "postgres"]
    assert not port_open("127.0.0.1", private_settings.kafka_port)
    assert not port_open("127.0.0.1", private_settings.postgres_port)
    assert [c.running for c in private_stack.status()] == [False, False]
    assert private_stack.down() == []


def test_port_in_use_names_the_port_and_the_setting(private_settings: DevStackSettings) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", private_settings.kafka_port))
        blocker.listen()
        with pytest.raises(
            StackError, match=rf"port {private_settings.kafka_port} .*dev.kafka_port"
        ):
            KafkaBroker(private_settings).up()


def test_missing_java_says_what_to_install(
    private_settings: DevStackSettings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StackError, match=r"`java` was not found.*apt-get install"):
        KafkaBroker(private_settings).up()
