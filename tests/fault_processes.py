"""The services of the fault suite as real OS processes, and the simulator's control API.

Each service is `.venv/bin/volspike <command>` started with its own environment (every URL
pointing at a loopback server of the test), its own working directory (no `.env` is read) and
its output in a log file whose tail is shown when a check fails. `kill()` is a SIGKILL: the
process gets no chance to clean up, as in a crash or an OOM kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

VOLSPIKE = Path(sys.executable).with_name("volspike")
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
LATE_CLOSE_MAX_DELAY = 1.0  # SimConfig.late_close_max_delay, which `volspike sim` keeps


class ServiceProcess:
    """One `volspike <args>` process; start, kill -9, stop (SIGTERM) and restart it."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self._proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode

    async def start(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start #{self.starts}: volspike {' '.join(self.args)}\n".encode())
            log.flush()
            self._proc = await asyncio.create_subprocess_exec(
                str(VOLSPIKE),
                *self.args,
                env=self.env,
                cwd=self.workdir,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )

    async def kill(self) -> None:
        """SIGKILL, then reap the process."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            raise RuntimeError(f"{self.name} is not running")
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

    async def signal(self, sig: signal.Signals) -> None:
        if self._proc is None or self._proc.returncode is not None:
            raise RuntimeError(f"{self.name} is not running")
        self._proc.send_signal(sig)

    async def wait(self, timeout: float) -> int:
        """Wait for the process to exit by itself; returns its exit code."""
        if self._proc is None:
            raise RuntimeError(f"{self.name} was never started")
        return await asyncio.wait_for(self._proc.wait(), timeout)

    async def stop(self, grace: float = 15.0) -> int | None:
        """SIGTERM and wait `grace` seconds; SIGKILL after that. Returns the exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGCONT)  # a stopped process cannot handle SIGTERM
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        return proc.returncode

    def log_tail(self, lines: int = 25) -> str:
        if not self.log_path.exists():
            return f"[{self.name}: no log]"
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {self.name} (last {len(text)} lines of {self.log_path})\n" + "\n".join(text)


class SimControl:
    """The simulator's `/sim/...` control endpoints and the REST figures the checks compare to."""

    def __init__(self, rest_url: str) -> None:
        self.rest_url = rest_url
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SimControl:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        assert self._session is not None
        async with self._session.request(method, f"{self.rest_url}{path}", json=body) as resp:
            data = await resp.json(content_type=None)
            if resp.status != 200:
                raise AssertionError(f"sim {method} {path} answered {resp.status}: {data}")
            return data

    async def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                await self.now_ms()
                return
            except aiohttp.ClientError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.1)

    async def now_ms(self) -> int:
        return int((await self._call("GET", "/sim/clock"))["serverTime"])

    async def advance(self, seconds: float) -> int:
        return int((await self._call("POST", "/sim/advance", {"seconds": seconds}))["serverTime"])

    async def step_to(self, target_ms: int, *, step: float = 60.0, pause: float = 0.1) -> int:
        """Move sim time to `target_ms` in steps of at most `step` seconds (one minute: each step
        crosses at most one minute boundary), so that the streams carry the closing frame of every
        minute, as the exchange does, instead of skipping some."""
        now = await self.now_ms()
        while now < target_ms:
            now = await self.advance(min(step, (target_ms - now) / 1000.0))
            await asyncio.sleep(pause)
        return now

    async def settle(self) -> None:
        """Let closing frames the sim holds back (a late close comes up to 1 s after the next
        minute's first frame) leave before a fault: after `step_to` squeezed minutes into tenths
        of a second, a late close in flight would otherwise be older than the minute ingest saw
        close last, a hole the real exchange, whose minutes last 60 s, cannot make."""
        await asyncio.sleep(LATE_CLOSE_MAX_DELAY + 0.2)

    async def spike(self, symbol: str, multiple: float, min_quote_volume: float) -> dict[str, Any]:
        body = {"symbol": symbol, "multiple": multiple, "min_quote_volume": min_quote_volume}
        result: dict[str, Any] = await self._call("POST", "/sim/spike", body)
        return result

    async def drop(self, refuse_seconds: float = 0.0) -> int:
        return int((await self._call("POST", "/sim/drop", {"refuse_seconds": refuse_seconds}))["dropped"])

    async def rest_errors(self, count: int, *, status: int, retry_after: int) -> None:
        body = {"count": count, "status": status, "retry_after": retry_after}
        await self._call("POST", "/sim/rest_errors", body)

    async def malformed(self, count: int) -> int:
        return int((await self._call("POST", "/sim/malformed", {"count": count}))["connections"])

    async def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        """The sim's log of REST requests (path, params, time, status, weight), oldest first."""
        query = "" if path is None else f"?path={path}"
        result: list[dict[str, Any]] = await self._call("GET", f"/sim/requests{query}")
        return result

    async def hour_quote_volume(self, symbol: str, hour_ms: int) -> float:
        """The exchange's own 1h kline quote volume (index 7) of the hour starting at `hour_ms`."""
        query = f"/fapi/v1/klines?symbol={symbol}&interval=1h&startTime={hour_ms}&limit=1"
        rows = await self._call("GET", query)
        assert rows and int(rows[0][0]) == hour_ms, f"no 1h kline of {symbol} at {hour_ms}: {rows}"
        return float(rows[0][7])
