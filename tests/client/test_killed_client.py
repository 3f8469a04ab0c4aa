"""A client killed without logout (SIGKILL) leaves the room for the others after the grace window."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from sfu.client import UpdateType
from tests.client.recording import login
from tests.conftest import APP_ID, make_token

REPO = Path(__file__).resolve().parents[2]
GRACE = 1.0

CHILD = """
import asyncio, sys
from sfu.client import Engine, EngineProfile, EventHandler, RoomConfig, User

async def main(url, app_id, token):
    engine = await Engine.create(EngineProfile(app_id=int(app_id), server=url), EventHandler())
    await engine.login_room("room1", User("doomed"), RoomConfig(token=token))
    await engine.start_publishing_stream("doomed-stream")
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.mark.slow
async def test_killed_client_is_removed_after_the_grace_window(node_factory, client):
    node = await node_factory(session={"reconnect_grace": GRACE})
    watcher, rec = await client(node)
    await login(watcher, "watcher")

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, node.ws_url, str(APP_ID), make_token("doomed"), cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.decode().strip() == "ready", (line, await proc.stderr.read())
        await rec.wait("user", update_type=UpdateType.ADD, user_id="doomed")
        await rec.wait("stream", update_type=UpdateType.ADD, stream_id="doomed-stream")

        loop = asyncio.get_running_loop()
        killed = loop.time()
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
        await rec.wait("stream", update_type=UpdateType.DELETE, stream_id="doomed-stream")
        await rec.wait("user", update_type=UpdateType.DELETE, user_id="doomed")
        assert loop.time() - killed >= GRACE - 0.1  # kept its place for the grace window first
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
