"""`make run` never sends simulated alerts to real users by accident: scripts/exchange.sh (what
scripts/run.sh uses to pick the exchange) run by bash, with Binance made unreachable or reachable
through BINANCE_PING_URL, and the real simulator started when that is the answer."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
TOKEN = "123456:real-looking-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def choose(tmp_path: Path, sim_port: int, **env: str) -> subprocess.CompletedProcess[str]:
    """Source the scripts, pick the exchange, print what run.sh would hand to `volspike run`, and
    check that a started simulator answers REST (the EXIT trap stops it again)."""
    script = f"""
source "{SCRIPTS}/lib.sh"
source "{SCRIPTS}/exchange.sh"
trap stop_simulator EXIT
choose_exchange
echo "REST=${{BINANCE_REST_URL:-}} WS=${{BINANCE_WS_URL:-}} USE_SIMULATOR=${{USE_SIMULATOR:-}}"
if [ -n "$SIM_PID" ]; then
  "$PY" -c "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).status)" \\
    "$BINANCE_REST_URL/fapi/v1/ping"
fi
"""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "BINANCE_", "USE_SIM", "SIM"))}
    unreachable = f"http://127.0.0.1:{free_port()}/fapi/v1/ping"
    full = {**keep, "BINANCE_PING_URL": unreachable, "SIM_PORT": str(sim_port), **env}
    return subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=full, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def sim_port() -> Iterator[int]:
    port = free_port()
    yield port
    assert not listening(port), "the simulator outlived the script"


def test_with_a_bot_token_an_unreachable_binance_stops_instead_of_using_the_simulator(
    tmp_path: Path, sim_port: int
):
    result = choose(tmp_path, sim_port, BOT_TOKEN=TOKEN)
    assert result.returncode == 1, result.stderr
    assert "not falling back to the simulator" in result.stderr and "make run SIM=1" in result.stderr
    assert "REST=" not in result.stdout


def test_a_bot_token_in_dotenv_counts_too(tmp_path: Path, sim_port: int):
    (tmp_path / ".env").write_text(f"BOT_TOKEN={TOKEN}\n")
    result = choose(tmp_path, sim_port)
    assert result.returncode == 1, result.stderr
    assert "BOT_TOKEN is set" in result.stderr


def test_sim_1_starts_the_simulator_even_with_a_bot_token_and_marks_its_alerts(tmp_path: Path, sim_port: int):
    result = choose(tmp_path, sim_port, BOT_TOKEN=TOKEN, SIM="1")
    assert result.returncode == 0, result.stderr
    assert (
        f"REST=http://127.0.0.1:{sim_port} WS=ws://127.0.0.1:{sim_port} USE_SIMULATOR=true" in result.stdout
    )
    assert result.stdout.strip().endswith("200")  # the simulator answered /fapi/v1/ping
    assert "[SIMULATED]" in result.stderr


def test_use_simulator_in_dotenv_asks_for_the_simulator_too(tmp_path: Path, sim_port: int):
    (tmp_path / ".env").write_text(f"BOT_TOKEN={TOKEN}\nUSE_SIMULATOR=true\n")
    result = choose(tmp_path, sim_port)
    assert result.returncode == 0, result.stderr
    assert f"REST=http://127.0.0.1:{sim_port}" in result.stdout and "USE_SIMULATOR=true" in result.stdout


def test_without_a_bot_token_an_unreachable_binance_falls_back_to_the_marked_simulator(
    tmp_path: Path, sim_port: int
):
    result = choose(tmp_path, sim_port)
    assert result.returncode == 0, result.stderr
    assert f"REST=http://127.0.0.1:{sim_port}" in result.stdout and "USE_SIMULATOR=true" in result.stdout
    assert "BOT_TOKEN is not set" in result.stderr


class _Ping(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_reachable_binance_is_followed_as_configured(tmp_path: Path, sim_port: int):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ping)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        ping = f"http://127.0.0.1:{server.server_address[1]}/fapi/v1/ping"
        result = choose(tmp_path, sim_port, BOT_TOKEN=TOKEN, BINANCE_PING_URL=ping)
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stderr
    assert "REST= WS= USE_SIMULATOR=" in result.stdout  # volspike's defaults: the real Binance


def test_an_explicit_binance_url_is_followed_without_probing(tmp_path: Path, sim_port: int):
    result = choose(tmp_path, sim_port, BOT_TOKEN=TOKEN, BINANCE_REST_URL="http://127.0.0.1:9")
    assert result.returncode == 0, result.stderr
    assert "REST=http://127.0.0.1:9 WS= USE_SIMULATOR=" in result.stdout
