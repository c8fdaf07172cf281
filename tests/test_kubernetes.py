"""deploy/kubernetes/: the cluster example is read as YAML and checked against the CLI and the
settings (no cluster on the development machines), like `test_packaging.py` does for compose."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from core.settings import Settings, load_settings
from core.shard import Shard
from volspike.cli import build_parser

DIR = Path(__file__).resolve().parent.parent / "deploy" / "kubernetes"
ROLES = {"ingest", "bot", "webapp"}


def _documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(DIR.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in _documents() if d["kind"] == kind]


def _choices(dest: str, parser: Any = None) -> Any:
    parser = parser or build_parser()
    return next(a for a in parser._actions if a.dest == dest).choices


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return container  # type: ignore[no-any-return]


def _role(workload: dict[str, Any]) -> str:
    return str(workload["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"])


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((DIR / "kustomization.yaml").read_text())
    files = {p.name for p in DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_every_setting_in_the_config_is_a_real_setting() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    for doc in _of_kind("ConfigMap"):
        assert set(doc["data"]) <= fields, set(doc["data"]) - fields
    for doc in _of_kind("Secret"):
        assert set(doc["stringData"]) <= fields, set(doc["stringData"]) - fields
        assert {"DATABASE_URL", "REDIS_URL", "BOT_TOKEN"} <= set(doc["stringData"])
    for workload in _of_kind("Deployment") + _of_kind("Job"):
        env = {e["name"] for e in _container(workload).get("env", [])}
        assert env <= fields, env - fields


def test_each_role_runs_its_cli_command_with_a_probe_asking_that_role() -> None:
    commands = _choices("command")
    known = _choices("service", commands["healthcheck"])
    deployments = _of_kind("Deployment")
    assert {_role(d) for d in deployments} == ROLES
    images = {_container(d)["image"] for d in deployments + _of_kind("Job")}
    assert images == {"volspike:latest"}
    for deployment in deployments:
        role, container = _role(deployment), _container(deployment)
        assert container["args"] == [role] and role in commands
        assert deployment["spec"]["replicas"] >= 2, f"{role} without a second replica"
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
        assert container["livenessProbe"]["exec"]["command"] == ["volspike", "healthcheck", role]
        assert role in known
        refs = {next(iter(r.values()))["name"] for r in container["envFrom"]}
        assert refs == {"volspike-config", "volspike-secrets"}
    (job,) = _of_kind("Job")
    assert _container(job)["args"] == ["migrate"] and "migrate" in commands


def test_one_ingest_deployment_per_shard_each_with_a_standby() -> None:
    ingest = [d for d in _of_kind("Deployment") if _role(d) == "ingest"]
    shards = set()
    for deployment in ingest:
        env = {e["name"]: e["value"] for e in _container(deployment)["env"]}
        shards.add(Shard.parse(env["INGEST_SHARD"]))
        assert deployment["spec"]["replicas"] == 2  # the leader and its standby
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    counts = {s.count for s in shards}
    assert len(counts) == 1, "every shard of one deployment has the same n"
    (n,) = counts
    assert {s.index for s in shards} == set(range(n)) and len(ingest) == n


def test_webapp_service_reaches_the_webapp_pods_on_their_port() -> None:
    (service,) = _of_kind("Service")
    (webapp,) = [d for d in _of_kind("Deployment") if _role(d) == "webapp"]
    labels = webapp["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    (port,) = _container(webapp)["ports"]
    (config,) = _of_kind("ConfigMap")
    assert port["containerPort"] == int(config["data"]["WEBAPP_PORT"])
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]


def test_the_webapp_behind_the_ingress_trusts_the_cluster_network_as_its_proxy() -> None:
    """The Ingress controller forwards every client: without TRUSTED_PROXIES they would all share
    one per-IP rate-limit bucket (the controller's address)."""
    (config,) = _of_kind("ConfigMap")
    proxies = load_settings(trusted_proxies=config["data"]["TRUSTED_PROXIES"]).trusted_proxies
    assert proxies and all(network.prefixlen <= 16 for network in proxies)
