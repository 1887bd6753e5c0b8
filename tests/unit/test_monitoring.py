"""The Prometheus alert rules and the Grafana dashboard shipped in monitoring/: promtool runs the
rules' unit tests, and every BigBrotr metric they name is one the processes export."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import bigbrotr.observability.metrics  # noqa: F401  (registers the metrics we read below)

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "monitoring" / "prometheus"
DASHBOARD = ROOT / "monitoring" / "grafana" / "dashboards" / "bigbrotr.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is missing: `apt-get install prometheus` (.ci/run installs it in CI)",
)
LAG = "bigbrotr_consumer_lag"  # collected at scrape time, so not in the registry until then


def _promtool(*args: str) -> str:
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, *args], cwd=PROMETHEUS, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _alerts() -> list[dict[str, Any]]:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]


@needs_promtool
def test_alert_rules_pass_their_promtool_unit_tests() -> None:
    assert "SUCCESS" in _promtool("test", "rules", "alerts_test.yml")


@needs_promtool
def test_prometheus_config_and_rules_are_valid() -> None:
    assert "4 rules found" in _promtool("check", "config", "prometheus.yml")


def test_every_alert_has_a_unit_test_that_fires_it_and_one_that_does_not() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    names = {rule["alert"] for rule in _alerts()}
    assert names == {
        "BigBrotrConsumerLagGrowing",
        "BigBrotrRejectRateHigh",
        "BigBrotrRelayFailureRateHigh",
        "BigBrotrProcessDown",
    }
    assert names == {case["alertname"] for case in cases if case["exp_alerts"]}
    assert names == {case["alertname"] for case in cases if not case["exp_alerts"]}


def _exported() -> set[str]:
    names = {LAG}
    for metric in REGISTRY.collect():
        names.update(sample.name for sample in metric.samples)
        names.add(metric.name + ("_total" if metric.type == "counter" else ""))
        names.update(f"{metric.name}_{suffix}" for suffix in ("bucket", "count", "sum"))
    return {name for name in names if name.startswith("bigbrotr_")}


def _named(expr: str) -> set[str]:
    return set(re.findall(r"\bbigbrotr_[a-z_]+", expr))


def test_alerts_and_dashboard_name_only_exported_metrics() -> None:
    exported = _exported()
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    exprs += [rule["expr"] for rule in _alerts()]
    named = set().union(*(_named(expr) for expr in exprs))
    assert named <= exported, named - exported
    covered = {"bigbrotr_consumer_lag", "bigbrotr_records_in_total", "bigbrotr_rejects_total"}
    assert covered <= named
    assert dashboard["uid"] == "bigbrotr"
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
