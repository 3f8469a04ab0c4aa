"""Failures surface as the failed state callback plus an EngineError with the table's code."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web

from sfu.client import (Engine, EngineError, EngineProfile, PlayerConfig, PlayerState, PublisherState, ResourceMode,
                        RoomConfig, RoomStateChangedReason, User)
from tests.client.recording import login
from tests.conftest import APP_ID, make_token

R = RoomStateChangedReason


async def test_bad_token_fails_login_and_the_engine_can_log_in_afterwards(node, client):
    engine, rec = await client(node)
    with pytest.raises(EngineError) as info:
        await engine.login_room("room1", User("u1"), RoomConfig(token="04garbage"))
    assert info.value.code == 1002067 and info.value.name == "TOKEN_INVALID"
    failed = await rec.wait("room_state", reason=R.LOGIN_FAILED)
    assert rec.reasons() == [R.LOGINING, R.LOGIN_FAILED]
    assert failed.error_code == 1002067 and "reason" in failed.extended_data
    assert not engine.is_logged_in

    await login(engine, "u1")
    await rec.wait("room_state", reason=R.LOGINED)


async def test_token_of_another_user_fails_with_1002067(node, client):
    engine, rec = await client(node)
    with pytest.raises(EngineError) as info:
        await engine.login_room("room1", User("u1"), RoomConfig(token=make_token("someone-else")))
    assert info.value.code == 1002067


async def test_second_room_is_refused_and_the_first_stays(node, client):
    engine, rec = await client(node)
    await login(engine, "u1", "room1")
    with pytest.raises(EngineError) as info:
        await login(engine, "u1", "room2")
    assert info.value.code == 1002001
    failed = await rec.wait("room_state", reason=R.LOGIN_FAILED)
    assert failed.room_id == "room2" and failed.error_code == 1002001
    with pytest.raises(EngineError) as info:
        await login(engine, "u1", "room1")
    assert info.value.code == 1002002
    assert engine.room_id == "room1"
    await engine.start_publishing_stream("still-works")


async def test_publish_denied_by_token(node, client):
    engine, rec = await client(node)
    await login(engine, "viewer", publish=False)
    with pytest.raises(EngineError) as info:
        await engine.start_publishing_stream("s1")
    assert info.value.code == 1003072
    await rec.wait("publisher", stream_id="s1", state=PublisherState.NO_PUBLISH)
    assert [(e.state, e.error_code) for e in rec.of("publisher")] == [
        (PublisherState.PUBLISH_REQUESTING, 0), (PublisherState.NO_PUBLISH, 1003072)]


async def test_publish_of_a_stream_not_in_the_tokens_list_is_denied(node, client):
    engine, _ = await client(node)
    await login(engine, "host", stream_ids=["allowed"])
    with pytest.raises(EngineError) as info:
        await engine.start_publishing_stream("other")
    assert info.value.code == 1003072
    await engine.start_publishing_stream("allowed")


async def test_stream_id_in_use_by_another_user(node, client):
    first, _ = await client(node)
    second, rec = await client(node)
    await login(first, "u1")
    await login(second, "u2", "room2")
    await first.start_publishing_stream("same")
    with pytest.raises(EngineError) as info:
        await second.start_publishing_stream("same")
    assert info.value.code == 1003028
    await rec.wait("publisher", stream_id="same", state=PublisherState.NO_PUBLISH, error_code=1003028)


async def test_only_cdn_is_unsupported(node, client):
    engine, rec = await client(node)
    await login(engine, "u1")
    with pytest.raises(EngineError) as info:
        await engine.start_playing_stream("s1", PlayerConfig(resource_mode=ResourceMode.ONLY_CDN))
    assert info.value.code == 1004003
    await rec.wait("player", stream_id="s1", state=PlayerState.NO_PLAY, error_code=1004003)
    assert rec.states("player", "s1") == [PlayerState.PLAY_REQUESTING, PlayerState.NO_PLAY]


async def test_invalid_stream_id(node, client):
    engine, _ = await client(node)
    await login(engine, "u1")
    with pytest.raises(EngineError) as info:
        await engine.start_publishing_stream("bad id!")
    assert info.value.code == 1003002


async def test_publish_and_play_before_login(node, client):
    engine, rec = await client(node)
    with pytest.raises(EngineError) as info:
        await engine.start_publishing_stream("s1")
    assert info.value.code == 1003001 and info.value.name == "PUBLISH_NOT_LOGGED_IN"
    with pytest.raises(EngineError) as info:
        await engine.start_playing_stream("s1")
    assert info.value.code == 1004001
    with pytest.raises(EngineError) as info:
        await engine.renew_token("room1", make_token("u1"))
    assert info.value.code == 1000002
    await rec.wait("player", stream_id="s1", state=PlayerState.NO_PLAY)
    assert [(e.kind, e.state, e.error_code) for e in rec.events] == [
        ("publisher", PublisherState.PUBLISH_REQUESTING, 0), ("publisher", PublisherState.NO_PUBLISH, 1003001),
        ("player", PlayerState.PLAY_REQUESTING, 0), ("player", PlayerState.NO_PLAY, 1004001)]


async def test_logout_of_another_room_fails(node, client):
    engine, rec = await client(node)
    await login(engine, "u1")
    with pytest.raises(EngineError) as info:
        await engine.logout_room("elsewhere")
    assert info.value.code == 1002011
    await rec.wait("room_state", reason=R.LOGOUT_FAILED, error_code=1002011)
    assert engine.is_logged_in


async def test_node_unreachable(client):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens here once closed
    engine, rec = await client(f"ws://127.0.0.1:{port}/ws")
    with pytest.raises(EngineError) as info:
        await login(engine, "u1")
    assert info.value.code == 1000003
    await rec.wait("room_state", reason=R.LOGIN_FAILED, error_code=1000003)


async def test_request_timeout(client):
    """A node that accepts the socket but never answers: REQUEST_TIMEOUT after request_timeout."""
    async def mute(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/ws", mute)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        engine, rec = await client(f"ws://127.0.0.1:{port}/ws", request_timeout=0.3)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(EngineError) as info:
            await login(engine, "u1")
        assert info.value.code == 1000005
        assert loop.time() - started < 3
        await rec.wait("room_state", reason=R.LOGIN_FAILED, error_code=1000005)
    finally:
        await runner.cleanup()


async def test_bad_profile_is_refused():
    with pytest.raises(EngineError) as info:
        await Engine.create(EngineProfile(app_id=0, server="ws://127.0.0.1:1/ws"))
    assert info.value.code == 1000010
    with pytest.raises(EngineError) as info:
        await Engine.create(EngineProfile(app_id=APP_ID, server="http://127.0.0.1:1/ws"))
    assert info.value.code == 1000036
