"""`volspike doctor`: one line per check, a fix for each failure, exit 0 only when all pass."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from pydantic import SecretStr

from core.settings import Settings
from simulator.config import SimConfig
from simulator.server import SimServer
from tests.conftest import PG_ADMIN_URL
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.test_cli import VOLSPIKE, clean_env, free_port
from volspike import __version__
from volspike.doctor import Check, doctor, run_checks


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(SimConfig(symbols=2, seed=3)) as server:
        yield server


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def healthy(settings: Settings, migrated: str, sim: SimServer, telegram: FakeTelegram) -> Settings:
    return settings.model_copy(
        update={
            "binance_rest_url": sim.rest_url,
            "binance_ws_url": sim.ws_url,
            "bot_token": SecretStr(TOKEN),
            "telegram_api_url": telegram.url,
            "webapp_url": "https://volspike.example",
        }
    )


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


async def test_every_check_passes_on_a_healthy_setup_and_exit_is_0(
    healthy: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await doctor(healthy) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "all checks passed"
    names = {line.split()[1] for line in lines[:-1]}
    assert {"postgres", "migrations", "redis", "binance", "bot", "webapp", "stripe"} <= names
    checks = by_name(await run_checks(healthy))
    for name in ("postgres", "migrations", "redis", "binance rest", "binance ws", "bot token", "webapp url"):
        assert checks[name].status == "ok", checks[name]
    assert "@volspike_test_bot" in checks["bot token"].detail
    assert checks["stripe"].status == "skip"


async def test_each_broken_dependency_fails_with_what_to_do(
    healthy: Settings, telegram: FakeTelegram, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = free_port()
    broken = healthy.model_copy(
        update={
            "database_url": f"postgresql://postgres@127.0.0.1:{dead}/volspike",
            "redis_url": f"redis://127.0.0.1:{dead}/0",
            "binance_rest_url": f"http://127.0.0.1:{dead}",
            "binance_ws_url": f"ws://127.0.0.1:{dead}",
            "webapp_url": "http://volspike.example",
            "stripe_secret_key": SecretStr("sk_test_123"),
        }
    )
    telegram.fail("getMe", 401, "Unauthorized")
    assert await doctor(broken) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "7 problem(s) found"
    telegram.fail("getMe", 401, "Unauthorized")
    checks = by_name(await run_checks(broken))
    expected_fix = {
        "postgres": "start PostgreSQL or fix DATABASE_URL",
        "redis": "start Redis or fix REDIS_URL",
        "binance rest": "check BINANCE_REST_URL",
        "binance ws": "check BINANCE_WS_URL",
        "bot token": "@BotFather",
        "webapp url": "https://",
        "stripe": "together",
    }
    for name, fix in expected_fix.items():
        assert checks[name].status == "FAIL", checks[name]
        assert fix in checks[name].fix, checks[name]
    assert "Unauthorized" in checks["bot token"].detail
    assert "STRIPE_WEBHOOK_SECRET" in checks["stripe"].detail
    assert "migrations" not in checks  # nothing to say about a schema on a server that does not answer


async def test_a_database_that_is_missing_or_behind_says_run_migrate(healthy: Settings) -> None:
    name = f"volspike_doctor_{uuid.uuid4().hex[:8]}"
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    missing = by_name(await run_checks(healthy.model_copy(update={"database_url": f"{base}/{name}"})))
    assert missing["postgres"].status == "ok"
    assert missing["migrations"].status == "FAIL" and "does not exist" in missing["migrations"].detail
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        behind = by_name(await run_checks(healthy.model_copy(update={"database_url": f"{base}/{name}"})))
        assert behind["migrations"].status == "FAIL"
        assert "pending" in behind["migrations"].detail and "volspike migrate" in behind["migrations"].fix
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.close()


def test_cli_doctor_exits_1_with_one_line_per_check_and_version_is_printed(tmp_path: object) -> None:
    dead = free_port()
    env = clean_env(
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{dead}/volspike",
        REDIS_URL=f"redis://127.0.0.1:{dead}/0",
        BINANCE_REST_URL=f"http://127.0.0.1:{dead}",
        BINANCE_WS_URL=f"ws://127.0.0.1:{dead}",
    )
    result = subprocess.run([*VOLSPIKE, "doctor"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines[:-1]] == [
        "FAIL",
        "FAIL",
        "FAIL",
        "FAIL",
        "skip",
        "skip",
        "skip",
    ]
    assert "Traceback" not in result.stderr
    version = subprocess.run([*VOLSPIKE, "--version"], capture_output=True, text=True, timeout=30)
    assert version.stdout.strip() == f"volspike {__version__}"
