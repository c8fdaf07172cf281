"""Packaging read as a machine would: no build output in git, a lock that covers pyproject, and a
Dockerfile and docker-compose.yml that agree with the CLI (there is no Docker engine to run them)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from core.settings import Settings
from volspike.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "scripts" / "lib.sh"


def _check_build_output(repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f'source "{LIB}" && check_no_build_output "{repo}"'],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_tracked_build_output_fails_the_check_with_a_clear_line(tmp_path: Path) -> None:
    built = [
        ".venv/bin/python",
        "bot/__pycache__/app.cpython-311.pyc",
        "locales/ru/LC_MESSAGES/messages.mo",
        "webapp/frontend/node_modules/x/index.js",
        "webapp/static/dist/app.js",
        "dist/volspike-0.1.0-py3-none-any.whl",
    ]
    for path in [*built, "bot/app.py", "locales/ru/LC_MESSAGES/messages.po"]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("x")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "add", "-f", "."], check=True)
    result = _check_build_output(tmp_path)
    assert result.returncode == 1
    assert "build output is tracked in git (6 path(s))" in result.stderr
    for path in built:
        assert f"tracked build output: {path}" in result.stderr
    assert "bot/app.py" not in result.stderr and "messages.po" not in result.stderr


def test_this_repository_tracks_no_build_output() -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    result = _check_build_output(ROOT)
    assert result.returncode == 0, result.stderr


def _pins(lock: Path) -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", lock.read_text(), flags=re.MULTILINE)
    return {name.lower().replace("_", "-"): version for name, version in pins}


def _pyproject() -> dict[str, Any]:
    import tomllib

    with (ROOT / "pyproject.toml").open("rb") as source:
        return tomllib.load(source)["project"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("lock", "groups"), [("main.lock", ()), ("dev.lock", ("dev",))])
def test_lock_files_pin_every_declared_dependency_within_its_range(
    lock: str, groups: tuple[str, ...]
) -> None:
    project = _pyproject()
    declared = [Requirement(r) for r in project["dependencies"]]
    for group in groups:
        declared += [Requirement(r) for r in project["optional-dependencies"][group]]
    pins = _pins(ROOT / "requirements" / lock)
    text = (ROOT / "requirements" / lock).read_text()
    assert "--hash=sha256:" in text
    for requirement in declared:
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is declared in pyproject.toml but not locked in {lock}: re-lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{name}=={pins[name]} in {lock} is outside {requirement.specifier}: re-lock"
        )


def _cli_commands() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)  # type: ignore[arg-type]


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


VOLSPIKE_SERVICES = {"migrate": "migrate", "ingest": "ingest", "bot": "bot", "webapp": "webapp"}


def test_compose_services_run_real_cli_commands_from_the_built_image() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "redis", *VOLSPIKE_SERVICES}
    commands = _cli_commands()
    for name, command in VOLSPIKE_SERVICES.items():
        service = services[name]
        assert service["build"] == "." and service["image"] == "volspike:latest", name
        assert service["command"] == [command] and command in commands, name
        settings_fields = {f.upper() for f in Settings.model_fields}
        assert set(service["environment"]) <= settings_fields, name


def test_compose_health_checks_ask_each_service_itself() -> None:
    services = _compose()["services"]
    assert services["postgres"]["healthcheck"]["test"][0] == "CMD-SHELL"
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"][1]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    healthcheck = next(a for a in build_parser()._actions if a.dest == "command").choices["healthcheck"]  # type: ignore[index]
    known = next(a for a in healthcheck._actions if a.dest == "service").choices
    for name in ("ingest", "bot", "webapp"):
        check = services[name]["healthcheck"]
        assert check["test"] == ["CMD", "volspike", "healthcheck", name]
        assert name in known
        assert check.get("start_period") and check.get("retries")
    assert "healthcheck" not in services["migrate"]


def test_compose_start_order_is_gated_on_health_and_on_migration() -> None:
    services = _compose()["services"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"
    for name in ("ingest", "bot", "webapp"):
        assert services[name]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }, name
    assert services["webapp"]["ports"] == ["8080:8080"]


def _stages() -> list[tuple[str, list[str]]]:
    """The Dockerfile as (FROM line, instructions) per stage; continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    stages: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            stages.append((line, []))
        else:
            stages[-1][1].append(line)
    return stages


def test_dockerfile_builds_the_wheel_then_installs_only_it_as_a_non_root_user() -> None:
    stages = _stages()
    (assets_from, assets), (builder_from, builder), (runtime_from, runtime) = stages
    assert assets_from.startswith("FROM node:") and assets_from.endswith("AS assets")
    assert "COPY webapp/frontend/package.json webapp/frontend/package-lock.json ./" in assets
    assert "RUN npm ci --no-audit --no-fund" in assets and "RUN npm run build" in assets
    assert "COPY --from=assets /src/webapp/static/dist ./webapp/static/dist" in builder
    assert builder_from.endswith("AS builder")
    assert any(i.startswith("RUN pip wheel --no-deps") for i in builder)
    for instruction in assets + builder:
        if instruction.startswith("COPY ") and "--from" not in instruction:
            for source in instruction.split()[1:-1]:
                assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which does not exist"
    assert runtime_from.startswith("FROM python:3.11-slim")
    copies = [i for i in runtime if i.startswith("COPY")]
    assert copies == ["COPY requirements/main.lock /tmp/main.lock", "COPY --from=builder /dist/ /tmp/dist/"]
    installs = [i for i in runtime if i.startswith("RUN pip install")]
    assert "--require-hashes" in installs[0] and "requirements" not in installs[1]
    assert "volspike-*.whl" in installs[1]
    user = [i for i in runtime if i.startswith("USER ")]
    assert user and user[-1] not in ("USER root", "USER 0")
    (health,) = [i for i in runtime if i.startswith("HEALTHCHECK")]
    assert health.endswith('CMD ["volspike", "healthcheck", "run"]')
    assert 'ENTRYPOINT ["volspike"]' in runtime and 'CMD ["run"]' in runtime
