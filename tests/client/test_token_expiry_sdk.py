"""room_token_will_expire arrives 30 s before expiry; renew_token replaces the token; an expired token
kicks the session out (KICK_OUT 1002056) without any reconnection attempt."""

from __future__ import annotations

import asyncio

import pytest

from sfu.client import EngineError, PublisherState, RoomStateChangedReason
from sfu.client.connection import State
from tests.client.recording import login
from tests.conftest import make_token

R = RoomStateChangedReason


async def test_will_expire_then_renew(node, client):
    engine, rec = await client(node)
    await login(engine, "u1", ttl=32)
    warning = await rec.wait("token_will_expire", timeout=5)
    assert warning.room_id == "room1" and 0 < warning.remaining_seconds <= 32

    await engine.renew_token("room1", make_token("u1", ttl=3600))
    with pytest.raises(EngineError) as info:
        await engine.renew_token("room1", make_token("someone-else"))
    assert info.value.code == 1002067
    with pytest.raises(EngineError) as info:
        await engine.renew_token("room2", make_token("u1"))
    assert info.value.code == 1002011
    assert engine.is_logged_in


async def test_expired_token_kicks_out(node, client):
    engine, rec = await client(node)
    await login(engine, "u1", ttl=2)
    await engine.start_publishing_stream("s1")
    await rec.wait("token_will_expire")
    kicked = await rec.wait("room_state", reason=R.KICK_OUT, timeout=6)
    assert kicked.error_code == 1002056 and kicked.room_id == "room1"
    await rec.wait("publisher", stream_id="s1", state=PublisherState.NO_PUBLISH, error_code=1002056)
    assert not engine.is_logged_in
    await _until_closed(engine)
    assert R.RECONNECTING not in rec.reasons()


async def test_renewed_token_does_not_expire(node, client):
    engine, rec = await client(node)
    await login(engine, "u1", ttl=2)
    await engine.renew_token("room1", make_token("u1", ttl=3600))
    await asyncio.sleep(3.0)  # proof of absence: past the first token's expiry
    assert rec.of("room_state", reason=R.KICK_OUT) == []
    assert engine.is_logged_in


async def _until_closed(engine, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while engine.connection.state is not State.CLOSED:
        assert loop.time() < deadline, engine.connection.state
        await asyncio.sleep(0.01)
