"""`sfu serve` as a user runs it: a subprocess on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import aiohttp
import pytest

from tests.conftest import APP_ID, SECRET


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    def __init__(self, args, env):
        self.proc = subprocess.Popen([sys.executable, "-m", "sfu", "serve", *args], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []

    def read_banner(self, timeout=10.0) -> dict:
        """Read the start-up banner (it ends with the token line, or the AppID line with a config)."""
        deadline = time.monotonic() + timeout
        info = {}
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"sfu serve exited: {self.proc.wait()} {self.proc.stderr.read()}")
            self.lines.append(line)
            if m := re.search(r"HTTP:\s+(\S+)", line):
                info["http"] = m.group(1)
            if m := re.search(r"AppID:\s+(\d+)", line):
                info["app_id"] = int(m.group(1))
            if m := re.search(r"Secret:\s+(\S+)", line):
                info["secret"] = m.group(1)
            if m := re.search(r"Token for user '([^']+)'.*: (\S+)", line):
                info["user"], info["token"] = m.group(1), m.group(2)
                return info
            if "app_id" in info and "--config" in self.proc.args:
                return info
        raise AssertionError("no banner")

    def stop(self, sig=signal.SIGTERM, timeout=10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ)
    e["XDG_STATE_HOME"] = str(tmp_path / "state")
    return e


@pytest.fixture
def served():
    procs = []

    def start(args, env):
        s = Served(args, env)
        procs.append(s)
        return s

    yield start
    for s in procs:
        s.stop(signal.SIGKILL)


async def test_serve_on_defaults_answers_healthz_within_3s_and_its_token_logs_in(served, env):
    from sfu.client import Engine, EngineProfile, EventHandler, RoomConfig, User

    t0 = time.monotonic()
    s = served(["--port", str(free_port())], env)
    info = s.read_banner()
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(info["http"] + "/healthz") as r:
                    assert r.status == 200 and (await r.json())["status"] == "ok"
                    break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    assert time.monotonic() - t0 < 3.0
    ws_url = info["http"].replace("http", "ws") + "/ws"
    engine = await Engine.create(EngineProfile(app_id=info["app_id"], server=ws_url), EventHandler())
    await engine.login_room("room1", User(info["user"]), RoomConfig(token=info["token"]))
    assert engine.is_logged_in
    await Engine.destroy(engine)
    assert s.stop() == 0
    assert "stopping" in s.proc.stdout.read()


async def test_restart_reuses_the_development_app(served, env):
    a = served(["--port", str(free_port())], env)
    first = a.read_banner()
    b = served(["--port", str(free_port())], env)
    second = b.read_banner()
    assert (first["app_id"], first["secret"]) == (second["app_id"], second["secret"])
    assert "new development app" in "".join(a.lines) and "reused development app" in "".join(b.lines)


async def test_sigterm_tells_sessions_and_closes_sockets(served, env):
    s = served(["--port", str(free_port())], env)
    info = s.read_banner()
    from sfu.token import generate_token04

    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(info["http"].replace("http", "ws") + "/ws")
        token = generate_token04(info["app_id"], "u1", info["secret"], 600, "", now=time.time())
        await ws.send_json({"v": 1, "id": 1, "type": "login", "app_id": info["app_id"], "room_id": "r",
                            "user": {"user_id": "u1"}, "token": token})
        assert (await ws.receive_json(timeout=5))["type"] == "reply"
        s.proc.send_signal(signal.SIGTERM)
        frames = []
        while True:
            msg = await ws.receive(timeout=5)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            frames.append(json.loads(msg.data))
        assert frames and frames[0] == {"v": 1, "type": "event", "event": "server_shutdown"}, (frames, msg)
        assert frames[1]["code"] == 1000060
    assert s.stop() == 0


def test_config_file_is_used(tmp_path, served, env):
    cfg = tmp_path / "sfu.toml"
    port = free_port()
    cfg.write_text(f'[node]\nport = {port}\n\n[[apps]]\napp_id = {APP_ID}\nsecret = "{SECRET}"\nmax_users_per_room = 5\n')
    s = served(["--config", str(cfg)], env)
    info = s.read_banner()
    assert info["app_id"] == APP_ID and "secret" not in info
    assert info["http"] == f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("toml, fragment", [
    ('[[apps]]\napp_id = 1\nsecret = "short"\n', "apps[0].secret"),
    ('[[apps]]\napp_id = -5\nsecret = "0123456789abcdef0123456789abcdef"\n', "apps[0].app_id"),
    ('[[apps]]\napp_id = 1\nsecret = "0123456789abcdef0123456789abcdef"\nmax_users_per_room = "x"\n',
     "apps[0].max_users_per_room"),
    ('[session]\nreconnect_grace = 0\n[[apps]]\napp_id = 1\nsecret = "0123456789abcdef0123456789abcdef"\n',
     "session.reconnect_grace"),
    ('[node]\nrtp_ports = "5-2"\n[[apps]]\napp_id = 1\nsecret = "0123456789abcdef0123456789abcdef"\n',
     "node.rtp_ports"),
    ('colour = "blue"\n', "colour"),
    ('[[apps]\n', "not valid TOML"),
])
def test_bad_config_is_refused_naming_the_key(tmp_path, env, toml, fragment):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml)
    r = subprocess.run([sys.executable, "-m", "sfu", "serve", "--config", str(cfg)], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "bad configuration" in r.stderr and fragment in r.stderr, r.stderr


def test_busy_port_is_a_clear_error(env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "sfu", "serve", "--port", str(port)], env=env,
                           capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "cannot listen" in r.stderr
