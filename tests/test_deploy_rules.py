"""The operations files in deploy/: Prometheus alerting rules, scrape config, Grafana dashboard.

`promtool` (Debian's `prometheus` package) checks the rules and the config and runs the rules' unit
tests (deploy/prometheus/alerts_test.yml: series in, alerts out). Independently of promtool, every
metric the rules and the dashboard query must be registered by our code, with the labels they
select on, so a renamed metric or label breaks this test rather than a silent dashboard at 3 a.m.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "volspike.json"
PACKAGES = ("volspike", "ingest", "bot", "webapp", "db")

# Names that are not ours: Prometheus' own `up`, the blackbox exporter's `probe_success`.
EXTERNAL = {"up", "probe_success"}
TARGET_LABELS = {"job", "instance", "le"}

METRIC = re.compile(r"\b(volspike_[a-z0-9_]+|up|probe_success)\b(\{[^}]*\})?")
MATCHER = re.compile(r"""(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)\"""")
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install -y prometheus)"
)


def import_metric_modules() -> None:
    """Import every module of ours that uses prometheus_client, so REGISTRY holds all our metrics."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "prometheus_client" not in path.read_text(encoding="utf-8"):
                continue
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            importlib.import_module(module.removesuffix(".__init__"))


def registered() -> dict[str, tuple[str, ...]]:
    """Every exposed sample name of our metrics (``_total``, ``_bucket``, ... included) -> label names."""
    import_metric_modules()
    names: dict[str, tuple[str, ...]] = {}
    # prometheus_client's own map of every exposed name to its collector (no public accessor).
    for name, collector in REGISTRY._names_to_collectors.items():
        if name.startswith("volspike_"):
            names[name] = tuple(getattr(collector, "_labelnames", ()))
    return names


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]


def selectors(exprs: list[str]) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """(metric name, [(label, op, value), ...]) for every metric mentioned in the expressions."""
    out = []
    for expr in exprs:
        for m in METRIC.finditer(expr):
            out.append((m.group(1), MATCHER.findall(m.group(2) or "")))
    return out


def all_exprs() -> list[str]:
    return [r["expr"] for r in rules()] + dashboard_exprs()


# ---------------------------------------------------------------- promtool


@needs_promtool
def test_promtool_accepts_the_alerting_rules() -> None:
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_accepts_the_scrape_config_and_its_rule_files() -> None:
    result = subprocess.run(
        [PROMTOOL, "check", "config", str(CONFIG)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


@needs_promtool
def test_rules_fire_on_the_series_of_each_failure() -> None:
    result = subprocess.run(
        [PROMTOOL, "test", "rules", str(RULE_TESTS)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=RULE_TESTS.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- metric names


def test_every_metric_the_rules_and_dashboard_query_is_registered_by_our_code() -> None:
    ours = registered()
    used = {name for name, _ in selectors(all_exprs())}
    unknown = sorted(used - set(ours) - EXTERNAL)
    assert not unknown, f"not registered by any prometheus_client metric in {PACKAGES}: {unknown}"


def test_label_names_and_values_selected_on_exist() -> None:
    ours = registered()
    for name, matchers in selectors(all_exprs()):
        if name in EXTERNAL:
            continue
        for label, op, value in matchers:
            assert label in ours[name] or label in TARGET_LABELS, f"{name} has no label {label!r}"
            if name == "volspike_deliveries_total" and op == "=":
                assert value in delivery_outcomes(), f"no delivery outcome {value!r}"


def delivery_outcomes() -> set[str]:
    """The outcomes ``volspike_deliveries_total`` documents in its help text ("by outcome: sent, ...")."""
    import_metric_modules()
    documentation = REGISTRY._names_to_collectors["volspike_deliveries_total"]._documentation
    listed = re.sub(r"\([^)]*\)", "", documentation.partition("outcome:")[2])
    return {word.strip(" .") for word in listed.split(",")}


def test_a_renamed_metric_would_be_caught() -> None:
    ours = registered()
    assert "volspike_candles_written_total" in ours
    assert "volspike_candles_writen_total" not in ours
    assert selectors(['rate(volspike_candles_writen_total{job="x"}[5m])']) == [
        ("volspike_candles_writen_total", [("job", "=", "x")])
    ]


# ---------------------------------------------------------------- structure


def test_each_operator_concern_has_an_alert() -> None:
    alerts = {r["alert"]: r for r in rules()}
    concerns = {
        "ingest silent (no frames)": ("VolspikeIngestSilent", "volspike_ingest_ws_messages_total"),
        "no candles written": ("VolspikeCandlesNotWritten", "volspike_candles_written_total"),
        "detection lag": ("VolspikeDetectionLag", "volspike_ingest_ws_event_lag_seconds"),
        "delivery backlog growing": ("VolspikeDeliveryBacklog", "volspike_delivery_queue_depth"),
        "oldest pending age": (
            "VolspikeDeliveryOldestPending",
            "volspike_delivery_oldest_pending_age_seconds",
        ),
        "outcomes unknown": ("VolspikeDeliveryOutcomesUnknown", 'outcome="unknown"'),
        "outcomes expired": ("VolspikeDeliveriesExpired", 'outcome="expired"'),
        "fan-out dead letters": ("VolspikeFanoutDeadLetters", "volspike_fanout_dead_total"),
        "PostgreSQL or Redis down": ("VolspikeHealthDown", 'probe_success{job="volspike-health"}'),
        "Telegram 401": ("VolspikeSenderStoppedUnauthorized", "volspike_sender_stopped"),
    }
    for concern, (alert, needle) in concerns.items():
        assert alert in alerts, concern
        assert needle in alerts[alert]["expr"], (concern, alerts[alert]["expr"])


def test_every_rule_has_a_severity_and_a_summary() -> None:
    seen = set()
    for rule in rules():
        assert rule["alert"] not in seen
        seen.add(rule["alert"])
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_health_probe_targets_the_health_endpoint() -> None:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"volspike-webapp", "volspike-ingest", "volspike-bot", "volspike-health"}
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    for service, setting in (("ingest", "INGEST_METRICS_PORT"), ("bot", "BOT_METRICS_PORT")):
        port = compose["services"][service]["environment"][setting]
        assert jobs[f"volspike-{service}"]["static_configs"][0]["targets"] == [f"{service}:{port}"]
    assert jobs["volspike-webapp"]["metrics_path"] == "/metrics"
    assert jobs["volspike-health"]["static_configs"][0]["targets"][0].endswith("/health")
    assert config["rule_files"] == ["alerts.yml"]


def test_dashboard_panels_are_well_formed() -> None:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids)) and doc["uid"] and doc["title"]
    variables = {v["name"] for v in doc["templating"]["list"]}
    for p in doc["panels"]:
        assert p["gridPos"]["w"] <= 24
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"].strip("${}") in variables, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["expr"].count("(") == t["expr"].count(")"), t["expr"]
    assert len([p for p in doc["panels"] if p["type"] != "row"]) >= 15
