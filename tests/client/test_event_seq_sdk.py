"""Event numbering against a scripted node: heartbeats acknowledge the last event seen, resume asks
for what came after it, and a replayed event already seen is dropped."""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from sfu.client import RoomConfig, RoomStateChangedReason, UpdateType, User

R = RoomStateChangedReason
TIMING = {"heartbeat_interval": 0.05, "session_timeout": 5.0, "reconnect_grace": 5.0, "token_expire": 0}


def stream_event(seq: int, stream_id: str) -> dict:
    return {"v": 1, "type": "event", "event": "room_stream_update", "seq": seq, "room_id": "room1",
            "update_type": 0, "extended_data": {},
            "streams": [{"stream_id": stream_id, "user": {"user_id": "h", "user_name": "h"}, "extra_info": ""}]}


class ScriptedNode:
    """Login: events 1, 1 (again), 2. The first acknowledgement of 2 closes the socket. Resume:
    events 2 (again), 3."""

    def __init__(self) -> None:
        self.requests: list[tuple[int, dict]] = []  # (connection number, request)
        self.connections = 0

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections += 1
        number = self.connections
        async for msg in ws:
            req = json.loads(msg.data)
            self.requests.append((number, req))

            async def reply(result: dict) -> None:
                await ws.send_json({"v": 1, "type": "reply", "id": req["id"], "result": result})

            if req["type"] == "login":
                await reply({"session_id": "S", "resume_token": "T", **TIMING})
                for event in (stream_event(1, "s1"), stream_event(1, "s1"), stream_event(2, "s2")):
                    await ws.send_json(event)
            elif req["type"] == "heartbeat":
                await reply({"now": 0})
                if number == 1 and req.get("ack") == 2:
                    await ws.close()
            elif req["type"] == "resume":
                await reply({"room_id": "room1", **TIMING})
                await ws.send_json(stream_event(2, "s2"))
                await ws.send_json(stream_event(3, "s3"))
            else:
                await reply({})
        return ws


@pytest.fixture
async def scripted():
    node = ScriptedNode()
    app = web.Application()
    app.router.add_get("/ws", node.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    node.url = f"ws://127.0.0.1:{runner.addresses[0][1]}/ws"
    yield node
    await runner.cleanup()


async def test_ack_resume_and_dedup(scripted, client):
    engine, rec = await client(scripted.url)
    await engine.login_room("room1", User("u1"), RoomConfig(token="t"))
    await rec.wait("stream", stream_id="s3")
    assert [e.stream_ids for e in rec.of("stream", update_type=UpdateType.ADD)] == [["s1"], ["s2"], ["s3"]]
    assert rec.reasons() == [R.LOGINING, R.LOGINED, R.RECONNECTING, R.RECONNECTED]

    acks = [req["ack"] for number, req in scripted.requests if req["type"] == "heartbeat" and number == 1]
    assert acks and acks == sorted(acks) and acks[-1] == 2
    resumes = [req for _, req in scripted.requests if req["type"] == "resume"]
    assert resumes == [{"v": 1, "id": resumes[0]["id"], "type": "resume", "session_id": "S", "resume_token": "T",
                        "last_event_seq": 2}]
