"""SDK tests: real engines against a real node on loopback."""

from __future__ import annotations

import pytest

from sfu.client import Engine, EngineProfile
from tests.client.netproxy import TcpProxy
from tests.client.recording import Recorder
from tests.conftest import APP_ID


@pytest.fixture
async def client(node_factory):
    """`engine, rec = await client(node_or_url, handler=None, **profile)`; destroyed at teardown
    (before the nodes stop)."""
    engines = []

    async def make(target, handler: Recorder | None = None, **profile):
        rec = handler if handler is not None else Recorder()
        url = target if isinstance(target, str) else target.ws_url
        engine = await Engine.create(EngineProfile(app_id=APP_ID, server=url, **profile), rec)
        engines.append(engine)
        return engine, rec

    yield make
    for engine in engines:
        await Engine.destroy(engine)


@pytest.fixture
async def proxy_factory(node_factory):
    proxies = []

    async def make(node) -> TcpProxy:
        proxy = await TcpProxy.to_node(node)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        await proxy.close()

