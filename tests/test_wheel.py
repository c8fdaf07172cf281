"""The wheel runs on its own: built, installed into a fresh virtualenv outside the checkout, and run.

No source tree on the path, no `make`: migrations, catalogs and the console script come from the
installed wheel alone. `volspike run` with a bot token against the Telegram look-alike answers
`/start` in each of the five languages, with the texts of the compiled catalogs.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from babel.messages.pofile import read_po

from core.i18n import SUPPORTED_LOCALES
from tests.conftest import PG_ADMIN_URL, TEST_REDIS_URL
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.test_cli import free_port

ROOT = Path(__file__).resolve().parent.parent
WELCOME_PREFIX = "Hi, {name}! I am <b>VolSpike</b>."

pytestmark = pytest.mark.timeout(300)


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not on PATH: the README's set-up command installs it (scripts/lib.sh ensure_uv)")
    return uv


def _clean_env(**extra: str) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "TMPDIR", "UV_CACHE_DIR", "SSL_CERT_FILE", "PIP_FIND_LINKS")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(UV_PYTHON_DOWNLOADS="never", **extra)
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A virtualenv outside the checkout with the locked runtime requirements and the built wheel."""
    uv = _uv()
    tmp = tmp_path_factory.mktemp("wheel")
    env = _clean_env()
    subprocess.run([uv, "build", "--wheel", "-o", str(tmp / "dist"), str(ROOT)], check=True, env=env)
    (wheel,) = (tmp / "dist").glob("volspike-*.whl")
    venv = tmp / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, env=env)
    python = str(venv / "bin" / "python")
    lock = ROOT / "requirements" / "main.lock"
    subprocess.run(
        [uv, "pip", "sync", "--quiet", "--compile-bytecode", "--python", python, str(lock)],
        check=True,
        env=env,
    )
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", python, "--no-deps", str(wheel)],
        check=True,
        env=env,
    )
    yield venv


def test_wheel_carries_migrations_and_compiled_catalogs(installed: Path) -> None:
    (wheel,) = installed.parent.joinpath("dist").glob("volspike-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"db/migrations/{p.name}" for p in (ROOT / "db" / "migrations").glob("*.sql")} <= names
    for locale in SUPPORTED_LOCALES:
        assert f"locales/{locale}/LC_MESSAGES/messages.mo" in names
        assert f"locales/{locale}/LC_MESSAGES/messages.po" in names
    assert {
        "webapp/templates/base.html",
        "webapp/templates/chart.html",
        "webapp/static/dist/chart.js",
    } <= names
    assert not [n for n in names if n.startswith(("tests/", "webapp/frontend/")) or "__pycache__" in n]


def test_installed_package_is_imported_from_the_virtualenv_not_the_checkout(installed: Path) -> None:
    out = subprocess.run(
        [
            str(installed / "bin" / "python"),
            "-c",
            "import bot, locales; print(bot.__file__, locales.__file__)",
        ],
        cwd=installed.parent,
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(ROOT) not in out and str(installed) in out


def _welcome(locale: str) -> str:
    with (ROOT / "locales" / locale / "LC_MESSAGES" / "messages.po").open("rb") as source:
        catalog = read_po(source)
    message = next(m for m in catalog if isinstance(m.id, str) and m.id.startswith(WELCOME_PREFIX))
    text = message.string or message.id
    assert isinstance(text, str)
    return text.format(name="Trader")


async def _mini_app_is_served(base: str) -> None:
    """The installed wheel serves the chart page and its bundled script (templates + static)."""
    async with aiohttp.ClientSession() as http:
        deadline = asyncio.get_running_loop().time() + 60
        while True:  # 404 (the page for a symbol not listed) until ingest has stored the universe
            async with http.get(f"{base}/chart/BTCUSDT") as page:
                html = await page.text()
                assert page.status in (200, 404), html[:300]
                assert page.content_type == "text/html"
            if page.status == 200 or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.5)
        assert page.status == 200, "BTCUSDT never listed: " + html[:300]
        scripts = re.findall(r'<script[^>]+src="([^"]+)"', html)
        assert scripts, html[:500]
        async with http.get(base + scripts[0]) as script:
            assert script.status == 200
            assert len(await script.read()) > 1000


@pytest.fixture
async def fresh_database() -> AsyncIterator[str]:
    name = f"volspike_wheel_{uuid.uuid4().hex[:8]}"
    yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await admin.close()


async def test_installed_wheel_migrates_runs_and_answers_start_in_five_languages(
    installed: Path, fresh_database: str, redis_prefix: str
) -> None:
    bin_dir = installed / "bin"
    workdir = installed.parent / "work"
    workdir.mkdir(exist_ok=True)
    migrate = await asyncio.create_subprocess_exec(
        str(bin_dir / "volspike"),
        "migrate",
        cwd=workdir,
        env=_clean_env(DATABASE_URL=fresh_database),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(migrate.communicate(), 60)
    assert migrate.returncode == 0, output.decode()
    assert b"applied" in output

    sim_port, web_port = free_port(), free_port()
    async with FakeTelegram() as telegram:
        sim = await asyncio.create_subprocess_exec(
            str(bin_dir / "volspike"),
            "sim",
            "--port",
            str(sim_port),
            "--symbols",
            "3",
            cwd=workdir,
            env=_clean_env(),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        run = await asyncio.create_subprocess_exec(
            str(bin_dir / "volspike"),
            "run",
            "--no-migrate",
            cwd=workdir,
            env=_clean_env(
                DATABASE_URL=fresh_database,
                REDIS_URL=TEST_REDIS_URL,
                REDIS_PREFIX=f"{redis_prefix}wheel:",
                BOT_TOKEN=TOKEN,
                TELEGRAM_API_URL=telegram.url,
                BINANCE_REST_URL=f"http://127.0.0.1:{sim_port}",
                BINANCE_WS_URL=f"ws://127.0.0.1:{sim_port}",
                WEBAPP_HOST="127.0.0.1",
                WEBAPP_PORT=str(web_port),
                WEBAPP_URL="https://volspike.test",
                HISTORY_HOURS="2",
            ),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            users = {locale: 8_100_000 + i for i, locale in enumerate(SUPPORTED_LOCALES)}
            for locale, user_id in users.items():
                telegram.push_message(user_id, "/start", language_code=locale, first_name="Trader")
            replies = asyncio.ensure_future(
                telegram.wait_for(
                    lambda _: all(telegram.calls_to("sendMessage", u) for u in users.values()), 90
                )
            )
            exited = asyncio.ensure_future(run.wait())
            await asyncio.wait({replies, exited}, return_when="FIRST_COMPLETED")
            exited.cancel()
            assert replies.done(), f"volspike run exited early ({run.returncode})"
            replies.result()
            for locale, user_id in users.items():
                assert telegram.calls_to("sendMessage", user_id)[0].text == _welcome(locale), locale
            await _mini_app_is_served(f"http://127.0.0.1:{web_port}")
            assert len({telegram.calls_to("sendMessage", uid)[0].text for uid in users.values()}) == 5
        finally:
            for proc in (run, sim):
                if proc.returncode is None:
                    proc.terminate()
            stderr = (await asyncio.wait_for(run.communicate(), 20))[1].decode()
            await asyncio.wait_for(sim.wait(), 20)
            sys.stderr.write(stderr[-3000:])
    assert "Traceback" not in stderr, stderr[-3000:]
    assert run.returncode == 0, stderr[-3000:]
