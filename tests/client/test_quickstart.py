"""The seeds' quick start, end to end through the SDK: log in, publish, see it, play it, stop, log out."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from sfu.client import (Engine, EngineError, PlayerConfig, PlayerState, PublisherState, ResourceMode, RoomConfig,
                        RoomStateChangedReason, Stream, UpdateType, User)
from tests.client.recording import Recorder, login
from tests.conftest import APP_ID, SECRET, make_token

R = RoomStateChangedReason
ADD, DELETE = UpdateType.ADD, UpdateType.DELETE
REPO = Path(__file__).resolve().parents[2]


async def test_seed_flow(node, client):
    a, rec_a = await client(node)
    b, rec_b = await client(node)

    await a.login_room("room1", User("userA"), RoomConfig(token=make_token("userA"), is_user_status_notify=True))
    await rec_a.wait("room_state", reason=R.LOGINED)
    assert rec_a.reasons() == [R.LOGINING, R.LOGINED]
    assert [e.error_code for e in rec_a.of("room_state")] == [0, 0]
    assert a.is_logged_in and a.room_id == "room1" and isinstance(a.session_id, str) and a.session_id

    await b.login_room("room1", User("userB"), RoomConfig(token=make_token("userB"), is_user_status_notify=True))
    await rec_b.wait("room_state", reason=R.LOGINED)
    seen_by_b = await rec_b.wait("user", update_type=ADD, user_id="userA")  # the login snapshot
    assert seen_by_b.users == [User("userA", "userA")]
    seen_by_a = await rec_a.wait("user", update_type=ADD, user_id="userB")
    assert seen_by_a.room_id == "room1" and seen_by_a.users[0].user_name == "userB"

    await b.start_publishing_stream("stream1", extra_info="hello")
    await rec_b.wait("publisher", stream_id="stream1", state=PublisherState.PUBLISHING)
    assert rec_b.states("publisher", "stream1") == [PublisherState.PUBLISH_REQUESTING, PublisherState.PUBLISHING]

    added = await rec_a.wait("stream", update_type=ADD, stream_id="stream1")
    assert added.streams == [Stream("stream1", User("userB"), "hello")]
    await a.start_playing_stream(added.streams[0].stream_id, PlayerConfig(resource_mode=ResourceMode.ONLY_L3))
    await rec_a.wait("player", stream_id="stream1", state=PlayerState.PLAYING)
    assert rec_a.states("player", "stream1") == [PlayerState.PLAY_REQUESTING, PlayerState.PLAYING]

    mark = rec_a.mark()
    await b.stop_publishing_stream()
    await rec_b.wait("publisher", stream_id="stream1", state=PublisherState.NO_PUBLISH)
    removed = await rec_a.wait("stream", update_type=DELETE, stream_id="stream1", start=mark)
    assert removed.streams[0].user.user_id == "userB"
    await rec_a.wait("player", stream_id="stream1", state=PlayerState.PLAY_REQUESTING, start=mark)

    await a.stop_playing_stream("stream1")
    await rec_a.wait("player", stream_id="stream1", state=PlayerState.NO_PLAY)

    await b.logout_room()
    await rec_b.wait("room_state", reason=R.LOGOUT)
    assert not b.is_logged_in and b.room_id is None and b.session_id is None
    await rec_a.wait("user", update_type=DELETE, user_id="userB")
    await a.logout_room("room1")
    await rec_a.wait("room_state", reason=R.LOGOUT)

    await Engine.destroy(a)
    await Engine.destroy(b)
    await Engine.destroy(a)  # a second destroy does nothing
    calls = [
        lambda: a.login_room("room1", User("userA"), RoomConfig(token=make_token("userA"))),
        lambda: a.logout_room(),
        lambda: a.start_publishing_stream("stream2"),
        lambda: a.stop_publishing_stream(),
        lambda: a.start_playing_stream("stream1"),
        lambda: a.stop_playing_stream("stream1"),
        lambda: a.renew_token("room1", make_token("userA")),
    ]
    for call in calls:
        with pytest.raises(EngineError) as info:
            await call()
        assert info.value.code == 1000001 and info.value.name == "ENGINE_DESTROYED"


async def test_stream_already_published_is_announced_on_login_and_played_from_the_callback(node, client):
    """The seeds play from inside onRoomStreamUpdate; an async callback may call the engine."""

    class AutoPlay(Recorder):
        engine: Engine

        async def on_room_stream_update(self, room_id, update_type, streams, extended_data):
            await super().on_room_stream_update(room_id, update_type, streams, extended_data)
            if update_type == ADD:
                await self.engine.start_playing_stream(streams[0].stream_id, PlayerConfig(ResourceMode.ONLY_L3))

    host, _ = await client(node)
    await login(host, "host")
    await host.start_publishing_stream("live")

    handler = AutoPlay()
    viewer, rec = await client(node, handler)
    handler.engine = viewer
    await login(viewer, "viewer", notify=False)
    await rec.wait("player", stream_id="live", state=PlayerState.PLAYING)
    assert rec.of("user") == []  # is_user_status_notify=False: no user events
    assert [e.kind for e in rec.events] == ["room_state", "room_state", "stream", "player", "player"]


async def test_a_failing_callback_does_not_stop_the_engine(node, client):
    class Broken(Recorder):
        def on_room_state_changed(self, room_id, reason, error_code, extended_data):
            raise RuntimeError("application bug")

    engine, rec = await client(node, Broken())
    await login(engine, "user1")
    await engine.start_publishing_stream("s1")
    await rec.wait("publisher", stream_id="s1", state=PublisherState.PUBLISHING)


async def test_user_name_defaults_to_user_id_and_can_differ(node, client):
    a, rec_a = await client(node)
    b, _ = await client(node)
    await login(a, "watcher")
    await b.login_room("room1", User("id-7", "Display Name"), RoomConfig(token=make_token("id-7")))
    seen = await rec_a.wait("user", update_type=ADD, user_id="id-7")
    assert seen.users == [User("id-7", "Display Name")]
    assert User("x").user_name == "x"


@pytest.mark.slow
async def test_token_from_the_cli_logs_in(node, client):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sfu", "token", "--app-id", str(APP_ID), "--secret", SECRET,
        "--user-id", "cli-user", "--room-id", "room1", cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    token = out.decode().strip().splitlines()[-1]

    engine, rec = await client(node)
    await engine.login_room("room1", User("cli-user"), RoomConfig(token=token))
    await rec.wait("room_state", reason=R.LOGINED)
    await engine.start_publishing_stream("cli-stream")
