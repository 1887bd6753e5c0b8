"""docker-compose.yaml cannot run here: check its syntax and its agreement with the local stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from bigbrotr.cli import app
from bigbrotr.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def test_valid_against_the_compose_specification() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_dependency_waits_for_a_health_check(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            if rule == {"condition": "service_completed_successfully"}:
                assert services[dependency].get("restart") == "no", f"{dependency} is not one-shot"
                continue
            assert rule == {"condition": "service_healthy"}, f"{name} -> {dependency}"
            assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"


def test_same_kafka_release_and_host_ports_as_the_local_stack(compose: dict[str, Any]) -> None:
    settings = load_settings()
    kafka, postgres = compose["services"]["kafka"], compose["services"]["postgres"]
    assert kafka["image"] == f"apache/kafka:{settings.dev.kafka_version}"
    assert f"127.0.0.1:{settings.dev.kafka_port}:{settings.dev.kafka_port}" in kafka["ports"]
    assert f"127.0.0.1:{settings.dev.postgres_port}:5432" in postgres["ports"]
    assert postgres["environment"]["POSTGRES_DB"] == settings.database.url.rsplit("/", 1)[1]


def test_bigbrotr_services_use_secret_files_not_plain_passwords(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        environment = service.get("environment", {})
        assert not any("PASSWORD" in key and not key.endswith("_FILE") for key in environment), name


@pytest.mark.parametrize("process", ["worker", "finder", "monitor", "sync", "sink"])
def test_every_long_running_process_is_a_service(compose: dict[str, Any], process: str) -> None:
    service = compose["services"][process]
    assert service["image"] == compose["services"]["init"]["image"]
    assert service["command"] == [process]
    assert service["restart"] == "unless-stopped"
    assert service["depends_on"]["init"] == {"condition": "service_completed_successfully"}
    assert service["depends_on"]["kafka"] == {"condition": "service_healthy"}
    assert service["environment"]["BIGBROTR_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_every_service_command_is_a_bigbrotr_command(compose: dict[str, Any]) -> None:
    commands = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    image = compose["services"]["init"]["image"]
    for name, service in compose["services"].items():
        if "command" in service and service.get("image") == image:
            assert service["command"][0] in commands, name


def test_prometheus_scrapes_every_process_on_its_metrics_port(compose: dict[str, Any]) -> None:
    settings = load_settings()
    config = yaml.safe_load((ROOT / "monitoring" / "prometheus" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    scraped = {entry["names"][0]: entry["port"] for entry in job["dns_sd_configs"]}
    assert scraped == settings.metrics.ports
    assert set(scraped) <= set(compose["services"])
    bigbrotr = compose["services"]["init"]["environment"]
    assert bigbrotr["BIGBROTR_METRICS__HOST"] == "0.0.0.0"
