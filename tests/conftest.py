"""Shared fixtures: a real node on loopback, and tokens for it."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from sfu.config import AppConfig, Config, NodeConfig, SessionConfig, SignallingConfig

APP_ID = 1234567890
SECRET = "0123456789abcdef0123456789abcdef"
OTHER_APP_ID = 987654321
OTHER_SECRET = "fedcba9876543210fedcba9876543210"


def make_token(user_id: str, *, app_id: int = APP_ID, secret: str = SECRET, room_id: str | None = None,
               publish: bool = True, login: bool = True, stream_ids: list[str] | None = None,
               ttl: int = 3600, now: float | None = None) -> str:
    from sfu.token import generate_token04, make_payload

    payload = make_payload(room_id, login=login, publish=publish, stream_ids=stream_ids)
    return generate_token04(app_id, user_id, secret, ttl, payload, now=time.time() if now is None else now)


def make_config(*, session: dict | None = None, signalling: dict | None = None, apps: list[AppConfig] | None = None) -> Config:
    apps = apps or [AppConfig(APP_ID, SECRET), AppConfig(OTHER_APP_ID, OTHER_SECRET)]
    return Config(
        apps=tuple(apps),
        node=NodeConfig(host="127.0.0.1", port=0),
        session=replace(SessionConfig(), **(session or {})),
        signalling=replace(SignallingConfig(), **(signalling or {})),
    )


@pytest.fixture
async def node_factory():
    """`await node_factory(session={...}, signalling={...})` starts a real node on 127.0.0.1:<free port>."""
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
