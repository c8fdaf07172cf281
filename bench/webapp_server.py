"""Shared by the webapp benchmarks: a throw-away PostgreSQL database and Redis prefix, and the
real webapp (`webapp.app.create_app`) serving in a child process, so the load generator does
not share its event loop."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import resource
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any

import asyncpg
from redis.asyncio import Redis

from bench.ingest_memory import free_port, wait_http
from core.settings import Settings, load_settings
from db.http_server import ProductRunner
from db.migrate import migrate

PG_ADMIN = os.environ.get("VOLSPIKE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("VOLSPIKE_BENCH_REDIS", "redis://127.0.0.1:6379/0")


def raise_open_files() -> int:
    """Lift the soft limit on open files to the hard one (10,000 sockets need it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _serve(overrides: dict[str, Any], port: int) -> None:
    from core.logs import setup_logging

    setup_logging("WARNING", json=True)
    raise_open_files()
    asyncio.run(_serve_async(overrides, port))


async def _serve_async(overrides: dict[str, Any], port: int) -> None:
    """The app on `port`, with `webapp_workers - 1` more processes on it (`webapp.workers`),
    until SIGTERM."""
    from aiohttp import web

    from webapp.app import create_app, run_webapp
    from webapp.workers import extra_workers, reuse_port

    settings = load_settings(_env_file=None, **overrides)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    runner = ProductRunner(create_app(settings), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port, backlog=4096, reuse_port=reuse_port(settings)).start()
        async with extra_workers(settings, run_webapp):
            await stop.wait()
    finally:
        await runner.cleanup()


@dataclass
class BenchWebapp:
    settings: Settings
    url: str
    process: BaseProcess

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid


@contextlib.asynccontextmanager
async def bench_database() -> AsyncIterator[str]:
    name = f"volspike_bench_{uuid.uuid4().hex[:8]}"
    url = f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
    await migrate(url)
    try:
        yield url
    finally:
        admin = await asyncpg.connect(PG_ADMIN)
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
            )
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        finally:
            await admin.close()


@contextlib.asynccontextmanager
async def bench_webapp(database_url: str, **overrides: Any) -> AsyncIterator[BenchWebapp]:
    """The webapp in a child process on a free port; its Redis keys are deleted afterwards."""
    prefix = f"vsbench:{uuid.uuid4().hex[:8]}:"
    port = free_port()
    config: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": REDIS_URL,
        "redis_prefix": prefix,
        "webapp_host": "127.0.0.1",
        "webapp_port": port,
        "api_rate_per_ip": 10_000_000,
        "api_rate_per_user": 10_000_000,
        **overrides,
    }
    # a daemonic process may not start the extra workers
    daemon = config.get("webapp_workers", 1) == 1
    process = multiprocessing.get_context("spawn").Process(target=_serve, args=(config, port), daemon=daemon)
    process.start()
    try:
        await wait_http(f"http://127.0.0.1:{port}/health/db", timeout=120)
        yield BenchWebapp(load_settings(_env_file=None, **config), f"http://127.0.0.1:{port}", process)
    finally:
        process.terminate()
        process.join(30)
        if process.is_alive():
            process.kill()
            process.join()
        redis = Redis.from_url(REDIS_URL)
        try:
            keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
            if keys:
                await redis.delete(*keys)
        finally:
            await redis.aclose()
