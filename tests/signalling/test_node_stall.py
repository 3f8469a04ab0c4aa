"""A stall of the node (its event loop stands still for longer than session_timeout: swapped out,
stopped, a long pause) is not blamed on a client that kept heartbeating meanwhile (room service
rules). The client runs in a thread of its own with its own event loop, as one on another machine
would: its heartbeats wait in the node's socket while the node stands still, and the node handles
the timers that fell due before it reads them. It used to close such a client's socket as silent
(CONNECTION_LOST). (The SDK would then reconnect and resume on its own; a client that does not
judge the node, as this one, was cut off.)"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import aiohttp

from tests.conftest import RawClient


async def test_a_client_heard_through_a_node_stall_keeps_its_session(node_factory):
    node = await node_factory(session={"heartbeat_interval": 0.2, "session_timeout": 1.0, "reconnect_grace": 10.0})
    logged_in, stalled = threading.Event(), threading.Event()
    outcome: dict = {}

    def client() -> None:
        async def main() -> None:
            async with aiohttp.ClientSession() as http:
                c = RawClient(await http.ws_connect(node.ws_url))
                assert (await c.login("room1", "alice"))["type"] == "reply"
                logged_in.set()
                beat = 100
                while not stalled.is_set() and beat < 400:  # every 0.2 s, through the stall (bounded: 60 s)
                    beat += 1
                    await c.send({"v": 1, "id": beat, "type": "heartbeat"})
                    await asyncio.sleep(0.2)
                await c.send({"v": 1, "id": 999, "type": "heartbeat"})  # after the stall: its reply, or a close
                while True:
                    msg = await c.ws.receive(timeout=10)
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        outcome["closed"] = (msg.type, msg.data, msg.extra)
                        return
                    m = json.loads(msg.data)
                    if m.get("id") == 999:
                        outcome["reply"] = m["type"]
                        await c.ws.close()
                        return

        try:
            asyncio.run(main())
        except BaseException as e:  # (reported to the test)
            outcome["error"] = repr(e)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    try:
        assert await asyncio.to_thread(logged_in.wait, 10), outcome
        time.sleep(2.5)  # the stall: the node's loop (this one) runs nothing for 2.5 s
        stalled.set()
        await asyncio.to_thread(thread.join, 20)
    finally:
        stalled.set()
    assert outcome == {"reply": "reply"}
    assert node.service.counters["checks_deferred"] >= 1
