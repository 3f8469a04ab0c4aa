"""Shared fixtures: a real node on loopback, tokens for it, and raw WebSocket clients."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from itertools import count

import aiohttp
import pytest
import uvloop

from sfu.config import AppConfig, Config, MetricsConfig, NodeConfig, SessionConfig, SignallingConfig

APP_ID = 1234567890
SECRET = "0123456789abcdef0123456789abcdef"
OTHER_APP_ID = 987654321
OTHER_SECRET = "fedcba9876543210fedcba9876543210"


def pytest_asyncio_loop_factories(config, item):
    """The event loops a test runs on (pytest-asyncio's hook).

    The node runs on uvloop (`sfu serve`, the SDK's CLI, the benches), so its tests do too. The SDK
    (`tests/client/`) runs on whatever loop its application brings, so its tests run on both.
    """
    if item.path.relative_to(item.config.rootpath).parts[:2] == ("tests", "client"):
        return {"uvloop": uvloop.new_event_loop, "asyncio": asyncio.new_event_loop}
    return {"uvloop": uvloop.new_event_loop}


def make_token(user_id: str, *, app_id: int = APP_ID, secret: str = SECRET, room_id: str | None = None,
               publish: bool = True, login: bool = True, stream_ids: list[str] | None = None,
               ttl: int = 3600, now: float | None = None) -> str:
    from sfu.token import generate_token04, make_payload

    payload = make_payload(room_id, login=login, publish=publish, stream_ids=stream_ids)
    return generate_token04(app_id, user_id, secret, ttl, payload, now=time.time() if now is None else now)


def make_config(*, session: dict | None = None, signalling: dict | None = None, apps: list[AppConfig] | None = None,
                metrics: dict | None = None, node: dict | None = None) -> Config:
    apps = apps or [AppConfig(APP_ID, SECRET), AppConfig(OTHER_APP_ID, OTHER_SECRET)]
    return Config(
        apps=tuple(apps),
        node=replace(NodeConfig(host="127.0.0.1", port=0), **(node or {})),
        session=replace(SessionConfig(), **(session or {})),
        signalling=replace(SignallingConfig(), **(signalling or {})),
        metrics=replace(MetricsConfig(), **(metrics or {})),
    )


@pytest.fixture
async def node_factory():
    """`await node_factory(session={...}, signalling={...}, metrics={...}, node={...})` starts a real node on
    127.0.0.1:<free port> (or node={"host": ...})."""
    from sfu.node import Node

    nodes = []

    async def make(**kwargs):
        node = Node(make_config(**kwargs))
        await node.start()
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        await node.stop()


@pytest.fixture
async def node(node_factory):
    return await node_factory()

class RawClient:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self._ids = count(1)
        self.events: list[dict] = []

    async def send(self, obj) -> None:
        await self.ws.send_str(obj if isinstance(obj, str) else json.dumps(obj))

    async def recv(self, timeout: float = 5.0) -> dict:
        msg = await self.ws.receive(timeout=timeout)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        return json.loads(msg.data)

    async def request(self, type_: str, timeout: float = 5.0, **fields) -> dict:
        rid = next(self._ids)
        await self.send({"v": 1, "id": rid, "type": type_, **fields})
        while True:
            m = await self.recv(timeout)
            if m["type"] == "event":
                self.events.append(m)
                continue
            assert m["id"] == rid, m
            return m

    async def login(self, room="room1", user="u1", **kw) -> dict:
        kw.setdefault("token", make_token(user))
        kw.setdefault("app_id", APP_ID)
        return await self.request("login", room_id=room, user={"user_id": user, "user_name": user}, **kw)

    async def next_event(self, name: str, timeout: float = 5.0) -> dict:
        for i, m in enumerate(self.events):
            if m["event"] == name:
                return self.events.pop(i)
        while True:
            m = await self.recv(timeout)
            if m["type"] == "event" and m["event"] == name:
                return m
            self.events.append(m)

    async def closed(self, timeout: float = 5.0) -> tuple[list[dict], aiohttp.WSMessage]:
        """Read until the socket closes; returns the frames seen and the close message."""
        frames = []
        while True:
            msg = await self.ws.receive(timeout=timeout)
            if msg.type == aiohttp.WSMsgType.TEXT:
                frames.append(json.loads(msg.data))
                continue
            return frames, msg


@pytest.fixture
async def connect():
    session = aiohttp.ClientSession()
    clients = []

    async def make(node) -> RawClient:
        ws = await session.ws_connect(node.ws_url, max_msg_size=4 << 20)
        c = RawClient(ws)
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.ws.close()
    await session.close()
    await asyncio.sleep(0)
