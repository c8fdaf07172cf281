"""The `volspike` console script: help, exit codes, clear one-line failures."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

VOLSPIKE = [sys.executable, "-m", "volspike.cli"]
COMMANDS = ("migrate", "ingest", "bot", "webapp", "run", "sim", "replay", "doctor", "healthcheck")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "BOT_", "SPIKE_"))}
    env.update(extra)
    return env


def run(args: list[str], tmp_path: Path, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VOLSPIKE, *args],
        cwd=tmp_path,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_help_documents_every_command(tmp_path: Path) -> None:
    result = run(["--help"], tmp_path)
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout
    for command in COMMANDS:
        sub = run([command, "--help"], tmp_path)
        assert sub.returncode == 0, sub.stderr
        assert f"volspike {command}" in sub.stdout


def test_unknown_command_exits_2(tmp_path: Path) -> None:
    result = run(["frobnicate"], tmp_path)
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_malformed_setting_stops_with_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run(["migrate"], tmp_path, SPIKE_MULTIPLE="three")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "SPIKE_MULTIPLE" in result.stderr and "Traceback" not in result.stderr


def test_database_url_that_is_not_a_url_is_rejected(tmp_path: Path) -> None:
    result = run(["migrate"], tmp_path, DATABASE_URL="volspike-db")
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr and "Traceback" not in result.stderr


def test_malformed_dotenv_value_is_reported_too(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("WEBAPP_PORT=eighty\n")
    result = run(["webapp"], tmp_path)
    assert result.returncode == 2
    assert "WEBAPP_PORT" in result.stderr


def test_postgres_down_gives_a_clear_line_and_exit_1(tmp_path: Path) -> None:
    port = free_port()
    started = time.monotonic()
    result = run(["migrate"], tmp_path, DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/volspike")
    assert time.monotonic() - started < 30
    assert result.returncode == 1
    assert f"cannot reach PostgreSQL at 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_redis_down_gives_a_clear_line_and_exit_1(tmp_path: Path, migrated: str) -> None:
    port = free_port()
    result = run(["webapp"], tmp_path, DATABASE_URL=migrated, REDIS_URL=f"redis://127.0.0.1:{port}/0")
    assert result.returncode == 1
    assert f"cannot reach Redis at 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_bot_without_token_says_so(tmp_path: Path) -> None:
    result = run(["bot"], tmp_path)
    assert result.returncode == 2
    assert "BOT_TOKEN" in result.stderr


def test_webapp_serves_health_and_stops_cleanly_on_sigterm(
    tmp_path: Path, migrated: str, redis_prefix: str
) -> None:
    import urllib.request

    port = free_port()
    proc = subprocess.Popen(
        [*VOLSPIKE, "webapp"],
        cwd=tmp_path,
        env=clean_env(
            DATABASE_URL=migrated, WEBAPP_HOST="127.0.0.1", WEBAPP_PORT=str(port), REDIS_PREFIX=redis_prefix
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        body = b""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    body = response.read()
                    break
            except OSError:
                time.sleep(0.2)
        assert b'"postgres"' in body
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = proc.wait(timeout=15)
        assert time.monotonic() - started < 10
        assert code == 0
        assert "Traceback" not in proc.stderr.read()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize("command", ["replay"])
def test_missing_required_argument_exits_2(tmp_path: Path, command: str) -> None:
    result = run([command], tmp_path)
    assert result.returncode == 2


def test_migrate_creates_the_database_then_is_a_noop(tmp_path: Path) -> None:
    import uuid

    import asyncpg

    from tests.conftest import PG_ADMIN_URL

    name = f"volspike_cli_{uuid.uuid4().hex[:8]}"
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        first = run(["migrate"], tmp_path, DATABASE_URL=url, LOG_LEVEL="DEBUG")
        assert first.returncode == 0, first.stderr
        assert "applied" in first.stdout and "Traceback" not in first.stderr
        second = run(["migrate"], tmp_path, DATABASE_URL=url)
        assert second.returncode == 0
        assert "up to date" in second.stdout
    finally:

        async def drop() -> None:
            conn = await asyncpg.connect(PG_ADMIN_URL)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

        import asyncio

        asyncio.run(drop())


def test_run_starts_ingest_and_webapp_without_a_bot_and_stops_on_sigterm(
    tmp_path: Path, migrated: str, redis_prefix: str
) -> None:
    import json
    import urllib.request

    sim_port, web_port = free_port(), free_port()
    sim = subprocess.Popen(
        [*VOLSPIKE, "sim", "--port", str(sim_port), "--symbols", "5"],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proc = subprocess.Popen(
        [*VOLSPIKE, "run"],
        cwd=tmp_path,
        env=clean_env(
            DATABASE_URL=migrated,
            REDIS_PREFIX=redis_prefix + "run:",
            WEBAPP_HOST="127.0.0.1",
            WEBAPP_PORT=str(web_port),
            BINANCE_REST_URL=f"http://127.0.0.1:{sim_port}",
            BINANCE_WS_URL=f"ws://127.0.0.1:{sim_port}",
            HISTORY_HOURS="2",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        health: dict[str, object] = {}
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/health", timeout=2) as response:
                    health = json.loads(response.read())
                    ingest = health["services"]["ingest"]  # type: ignore[index]
                    if ingest.get("armed"):
                        break
            except OSError:
                pass
            time.sleep(0.3)
        assert health.get("status") == "ok"
        assert health["services"]["ingest"]["armed"] is True  # type: ignore[index]
        assert health["services"]["bot"]["ok"] is False  # type: ignore[index]
        env = clean_env(REDIS_PREFIX=redis_prefix + "run:", WEBAPP_PORT=str(web_port))
        for service, code in (("run", 0), ("webapp", 0), ("ingest", 0), ("bot", 1)):
            check = subprocess.run(
                [*VOLSPIKE, "healthcheck", service], env=env, capture_output=True, text=True, timeout=60
            )
            assert check.returncode == code, (service, check.stdout, check.stderr)
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = proc.wait(timeout=15)
        assert time.monotonic() - started < 10
        assert code == 0
        stderr = proc.stderr.read()  # type: ignore[union-attr]
        assert "bot is off" in stderr and "Traceback" not in stderr
    finally:
        for p in (proc, sim):
            if p.poll() is None:
                p.kill()
                p.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
