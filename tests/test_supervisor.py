"""The in-process supervisor of `volspike run`: a service that crashes is restarted with backoff
while the others keep serving; only a bad setting stops everything."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

import aiohttp
import asyncpg
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from core.errors import ConfigError
from core.settings import Settings
from core.supervisor import supervise
from db.unavailable import is_unavailable
from tests.fakes.telegram_api import TOKEN
from volspike.runtime import run_services
from webapp.app import run_webapp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_a_service_killed_by_postgres_is_restarted_with_backoff_while_the_webapp_answers(
    settings: Settings,
    database_url: str,
    db: asyncpg.Pool,
    redis: Redis,
    caplog: pytest.LogCaptureFixture,
):
    port = free_port()
    config = settings.model_copy(update={"webapp_host": "127.0.0.1", "webapp_port": port})
    starts = 0
    errors: list[BaseException] = []
    running = asyncio.Event()

    async def flaky() -> None:
        """Dies three times of a real PostgreSQL error (its backend terminated), then runs."""
        nonlocal starts
        starts += 1
        if starts <= 3:
            conn = await asyncpg.connect(database_url)
            try:
                await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
            except Exception as exc:
                errors.append(exc)
                raise
            finally:
                conn.terminate()
        running.set()
        await asyncio.Event().wait()

    caplog.set_level(logging.ERROR, logger="core.supervisor")
    task = asyncio.create_task(
        supervise(
            {"webapp": lambda: run_webapp(config, db, redis), "flaky": flaky},
            restart_first=0.05,
            restart_cap=0.4,
        )
    )
    try:
        async with aiohttp.ClientSession() as http:
            answers: list[int] = []
            while not running.is_set():
                assert not task.done(), task
                try:
                    async with http.get(f"http://127.0.0.1:{port}/health") as response:
                        answers.append(response.status)
                except aiohttp.ClientConnectionError:
                    pass  # not listening yet
                await asyncio.sleep(0.02)
            async with http.get(f"http://127.0.0.1:{port}/health") as response:
                assert response.status == 200
        assert 200 in answers  # the webapp answered while the other service was being restarted
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert starts == 4
    assert len(errors) == 3 and all(is_unavailable(exc) for exc in errors)
    restarts = [r for r in caplog.records if r.getMessage() == "service stopped; restarting it"]
    assert [r.__dict__["service"] for r in restarts] == ["flaky"] * 3
    delays = [r.__dict__["retry_in"] for r in restarts]
    assert delays[0] < delays[1] < delays[2]  # growing backoff (0.05, 0.1, 0.2 ± 20 %)


async def test_a_bad_setting_stops_every_service_and_reaches_the_caller():
    stopped = asyncio.Event()

    async def steady() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    async def misconfigured() -> None:
        await asyncio.sleep(0)
        raise ConfigError("invalid setting X: bad")

    with pytest.raises(ConfigError, match="invalid setting X"):
        await supervise({"steady": steady, "misconfigured": misconfigured}, restart_first=0.01)
    assert stopped.is_set()


async def test_a_service_that_returns_is_started_again():
    starts = 0
    again = asyncio.Event()

    async def returns() -> None:
        nonlocal starts
        starts += 1
        if starts == 3:
            again.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(supervise({"returns": returns}, restart_first=0.01, restart_cap=0.02))
    try:
        await asyncio.wait_for(again.wait(), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert starts == 3


async def test_volspike_run_keeps_the_webapp_serving_while_the_bot_cannot_start(
    settings: Settings, db: asyncpg.Pool, caplog: pytest.LogCaptureFixture
):
    # The bot's first call (getMe) fails: Telegram is unreachable. The bot is restarted with
    # backoff; the webapp, started by the same `run_services`, answers /health meanwhile.
    port = free_port()
    config = settings.model_copy(
        update={
            "bot_token": SecretStr(TOKEN),
            "telegram_api_url": f"http://127.0.0.1:{free_port()}",
            "webapp_host": "127.0.0.1",
            "webapp_port": port,
        }
    )
    caplog.set_level(logging.ERROR, logger="core.supervisor")
    task = asyncio.create_task(run_services(config, ingest=False, bot=True, webapp=True))

    def bot_restarts() -> int:
        return sum(
            1
            for r in caplog.records
            if r.getMessage() == "service stopped; restarting it" and r.__dict__["service"] == "bot"
        )

    try:
        async with aiohttp.ClientSession() as http:
            status = None
            for _ in range(1000):  # bounded: 1000 × 20 ms
                assert not task.done(), task
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with http.get(f"http://127.0.0.1:{port}/health") as response:
                        status = response.status
                if status == 200 and bot_restarts() >= 1:
                    break
                await asyncio.sleep(0.02)
            assert status == 200 and bot_restarts() >= 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_health_says_not_ok_while_a_service_is_crash_looping(
    settings: Settings, db: asyncpg.Pool, redis: Redis, caplog: pytest.LogCaptureFixture
):
    """`volspike run` with a bot that dies at every start (Telegram unreachable): after three
    restarts in a row /health answers 503 naming the bot as crash-looping, not `ok`."""
    port = free_port()
    config = settings.model_copy(
        update={
            "bot_token": SecretStr(TOKEN),
            "telegram_api_url": f"http://127.0.0.1:{free_port()}",
            "webapp_host": "127.0.0.1",
            "webapp_port": port,
        }
    )
    task = asyncio.create_task(run_services(config, ingest=False, bot=True, webapp=True))
    body: dict[str, object] = {}
    try:
        async with aiohttp.ClientSession() as http:
            status = None
            for _ in range(600):  # bounded: 600 × 50 ms; restarts come after 1, 2 and 4 s
                assert not task.done(), task
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with http.get(f"http://127.0.0.1:{port}/health") as response:
                        status, body = response.status, await response.json()
                if status == 503:
                    break
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert status == 503, body
    assert body["status"] == "degraded" and body["postgres"]["ok"] and body["redis"]["ok"]  # type: ignore[index]
    bot = body["services"]["bot"]  # type: ignore[index]
    assert bot["ok"] is False and bot["state"] == "crash-looping" and bot["restarts_in_a_row"] >= 3
