"""A real Prometheus for tests (Debian's `prometheus`, installed by .ci/run).

    async with running_prometheus("127.0.0.1:8080", tmp_path) as prom:
        await prom.until("sfu_players", lambda r: len(r) > 0)

It listens on 127.0.0.1 on a port of its own, keeps its TSDB in the given directory and scrapes
one target every second. It is stopped by its PID: SIGTERM, a bounded wait, then SIGKILL. A
missing binary fails the test (it does not skip): the scrape test is the point.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import aiohttp
import pytest

READY_TIMEOUT = 30.0  # seconds; Prometheus on a loaded 2-core machine starts in ~1-3 s
STOP_TIMEOUT = 10.0


def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        pytest.fail("prometheus is not installed (.ci/run installs Debian's prometheus: "
                    "apt-get install prometheus)")
    return path


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape_config(target: str, *, metrics_path: str = "/metrics", interval: str = "1s", job: str = "sfu") -> str:
    """prometheus.yml scraping one target (host:port) every `interval`, rules evaluated as often."""
    return (
        "global:\n"
        f"  scrape_interval: {interval}\n"
        f"  scrape_timeout: {interval}\n"
        f"  evaluation_interval: {interval}\n"
        "scrape_configs:\n"
        f"  - job_name: {job}\n"
        f"    metrics_path: {metrics_path}\n"
        "    static_configs:\n"
        f"      - targets: ['{target}']\n"
    )


class PrometheusError(AssertionError):
    pass


class Prometheus:
    """One Prometheus process; `start()` returns once `/-/ready` answers 200."""

    def __init__(self, target: str, workdir: Path, *, metrics_path: str = "/metrics", interval: str = "1s",
                 port: int | None = None) -> None:
        self.target = target
        self.workdir = Path(workdir)
        self.metrics_path = metrics_path
        self.interval = interval
        self.fixed_port = port  # None: a free one, chosen at start
        self.port = port or 0
        self.process: subprocess.Popen | None = None
        self._http: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "prometheus.log"

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    async def start(self, timeout: float = READY_TIMEOUT) -> None:
        binary = prometheus_binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(scrape_config(self.target, metrics_path=self.metrics_path, interval=self.interval))
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        try:
            for _ in range(1 if self.fixed_port else 3):  # a free port may be taken before Prometheus binds it
                self.port = self.fixed_port or free_tcp_port()
                with open(self.log_path, "ab") as log:
                    self.process = subprocess.Popen(
                        [binary, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'data'}",
                         f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                        stdin=subprocess.DEVNULL, stdout=log, stderr=log)
                if await self._until_ready(timeout):
                    return
                exited = self.process.poll() is not None
                self.stop_process()
                if not (exited and "address already in use" in self.log_tail()):
                    break
            raise PrometheusError(f"prometheus did not become ready on {self.url} within {timeout} s; "
                                  f"log:\n{self.log_tail()}")
        except BaseException:
            await self.stop()
            raise

    async def _until_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                async with self._http.get(self.url + "/-/ready", timeout=aiohttp.ClientTimeout(total=1)) as r:
                    if r.status == 200:
                        return True
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.1)
        return False

    async def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; returns `data`, raises PrometheusError on an error answer."""
        async with self._http.get(f"{self.url}/api/v1/{path}", params=params) as r:
            body = await r.json()
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    async def query(self, expr: str) -> list[dict]:
        """An instant query: the result vector, each `{"metric": {labels}, "value": [ts, "str"]}`."""
        data = await self.api("query", query=expr)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    async def targets(self) -> list[dict]:
        return (await self.api("targets"))["activeTargets"]

    async def until(self, expr: str, check: Callable[[list[dict]], bool], timeout: float = 20.0,
                    interval: float = 0.25) -> list[dict]:
        """Poll `expr` until `check(result)` holds; fail after `timeout` s with the last result and target health."""
        deadline = time.monotonic() + timeout
        while True:
            result = await self.query(expr)
            if check(result):
                return result
            if time.monotonic() >= deadline:
                health = [(t["scrapeUrl"], t["health"], t["lastError"]) for t in await self.targets()]
                raise PrometheusError(f"{expr!r} did not satisfy the check within {timeout} s; last result "
                                      f"{result}; targets {health}")
            await asyncio.sleep(interval)

    def stop_process(self) -> None:
        """SIGTERM this process (by PID), wait, SIGKILL if it does not exit."""
        p, self.process = self.process, None
        if p is None or p.poll() is not None:
            return
        p.terminate()
        try:
            p.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(STOP_TIMEOUT)

    async def stop(self) -> None:
        self.stop_process()
        if self._http is not None:
            await self._http.close()
            self._http = None


def values(result: list[dict], by: str | None = None) -> dict[str | None, float]:
    """A query result as {label value of `by` (or None): float}."""
    return {(r["metric"].get(by) if by else None): float(r["value"][1]) for r in result}


@asynccontextmanager
async def running_prometheus(target: str, workdir: Path, **kwargs) -> AsyncIterator[Prometheus]:
    prom = Prometheus(target, workdir, **kwargs)
    await prom.start()
    try:
        yield prom
    finally:
        await prom.stop()
