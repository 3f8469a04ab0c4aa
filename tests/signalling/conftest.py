"""Raw WebSocket clients against a real node on loopback."""

from __future__ import annotations

import asyncio
import json
from itertools import count

import aiohttp
import pytest

from tests.conftest import APP_ID, make_token


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
