"""A second login of the same user_id kicks the first engine out: KICK_OUT 1002050, its publishers
stop, it does not try to reconnect, and it can log in again (kicking the other)."""

from __future__ import annotations

import asyncio

from sfu.client import PublisherState, RoomStateChangedReason, UpdateType
from sfu.client.connection import State
from tests.client.recording import login

R = RoomStateChangedReason


async def test_duplicate_login_kicks_out(node, client):
    first, rec1 = await client(node)
    second, rec2 = await client(node)
    watcher, rec_w = await client(node)
    await login(watcher, "watcher")
    await login(first, "dup")
    await first.start_publishing_stream("s1")
    await rec_w.wait("stream", update_type=UpdateType.ADD, stream_id="s1")

    await login(second, "dup")
    kicked = await rec1.wait("room_state", reason=R.KICK_OUT)
    assert kicked.error_code == 1002050 and kicked.room_id == "room1"
    await rec1.wait("publisher", stream_id="s1", state=PublisherState.NO_PUBLISH, error_code=1002050)
    assert not first.is_logged_in
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while first.connection.state is not State.CLOSED:
        assert loop.time() < deadline
        await asyncio.sleep(0.01)
    assert R.RECONNECTING not in rec1.reasons()
    await rec_w.wait("stream", update_type=UpdateType.DELETE, stream_id="s1")
    delete = await rec_w.wait("user", update_type=UpdateType.DELETE, user_id="dup")
    await rec_w.wait("user", update_type=UpdateType.ADD, user_id="dup", start=rec_w.events.index(delete))

    mark = rec2.mark()
    await login(first, "dup")
    await rec2.wait("room_state", reason=R.KICK_OUT, error_code=1002050, start=mark)
    assert first.is_logged_in and not second.is_logged_in
