"""SIGHUP to a running `bigbrotr monitor`: the probe interval and limits from the edited file take
effect at once, a key that needs a restart is named and kept, and a broken file changes nothing."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import yaml

from bigbrotr.config import Settings
from bigbrotr.devstack.process import free_port
from bigbrotr.topics import create_topics
from tests.support.metrics import scrape
from tests.support.relays import RunningRelay
from tests.support.sink import sink_processes
from tests.support.waiting import until

pytestmark = pytest.mark.integration


async def test_sighup_reloads_rates_and_limits_and_names_what_needs_a_restart(
    settings: Settings, local_relay_history: RunningRelay, tmp_path: Path
) -> None:
    relay = local_relay_history
    create_topics(settings.kafka)
    config = tmp_path / "bigbrotr.yaml"
    file: dict[str, object] = {
        "connectors": {"allow": [relay.host_port]},
        "monitor": {"interval_s": 3600, "concurrency": 20},
        "sync": {"group_id": "sync"},
    }
    config.write_text(yaml.safe_dump(file))
    port = free_port()
    with sink_processes(settings, tmp_path) as processes:
        processes.env["BIGBROTR_METRICS__PORTS__MONITOR"] = str(port)
        monitor = processes.start("--config", str(config), "monitor", relay.url)

        def probes(least: int) -> bool:
            found = scrape(port)
            return found is not None and found.value("bigbrotr_relay_probes_total") >= least

        await until(lambda: probes(1), "the first probe")
        assert not probes(2), "a second probe within the hour before any reload"

        file["monitor"] = {"interval_s": 1, "concurrency": 4}
        file["sync"] = {"group_id": "other"}
        config.write_text(yaml.safe_dump(file))
        monitor.send_signal(signal.SIGHUP)
        await until(lambda: "SIGHUP: reloaded" in processes.log(), "the reload is logged")
        log = processes.log()
        assert "monitor.interval_s: 3600.0 -> 1.0" in log
        assert "monitor.concurrency: 20 -> 4" in log
        assert "these need a restart: sync.group_id" in log
        await until(lambda: probes(3), "probes every second after the reload", within=30)

        config.write_text("monitor: {interval_s: -5}\n")
        monitor.send_signal(signal.SIGHUP)
        await until(lambda: "settings not reloaded" in processes.log(), "a bad file is refused")
        assert "monitor.interval_s" in processes.log().rsplit("settings not reloaded", 1)[1]
        assert monitor.poll() is None, "the monitor keeps running on its settings"
        metrics = scrape(port)
        assert metrics is not None
        assert metrics.value("bigbrotr_settings_reloads_total", outcome="applied") == 1
        assert metrics.value("bigbrotr_settings_reloads_total", outcome="failed") == 1
