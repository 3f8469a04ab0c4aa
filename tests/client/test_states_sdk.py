"""Publisher and player state callbacks across the life of a session."""

from __future__ import annotations

import pytest

from sfu.client import (Engine, EngineError, PlayerConfig, PlayerState, PublisherState, ResourceMode,
                        RoomStateChangedReason, UpdateType)
from tests.client.recording import login

R = RoomStateChangedReason
P = PlayerState


async def test_playing_a_stream_before_it_exists_starts_when_it_appears(node, client):
    viewer, rec = await client(node)
    host, _ = await client(node)
    await login(viewer, "viewer")
    await login(host, "host", "room2")  # playing works across rooms of the AppID
    await viewer.start_playing_stream("later", PlayerConfig(ResourceMode.ONLY_RTC))
    await rec.wait("player", stream_id="later", state=P.PLAY_REQUESTING)

    await host.start_publishing_stream("later")
    await rec.wait("player", stream_id="later", state=P.PLAYING)
    mark = rec.mark()
    await host.stop_publishing_stream()
    stopped = await rec.wait("player", stream_id="later", state=P.PLAY_REQUESTING, start=mark)
    await host.start_publishing_stream("later")
    await rec.wait("player", stream_id="later", state=P.PLAYING, start=next(i for i, e in enumerate(rec.events) if e is stopped))
    assert rec.states("player", "later") == [P.PLAY_REQUESTING, P.PLAYING, P.PLAY_REQUESTING, P.PLAYING]
    assert all(e.error_code == 0 for e in rec.of("player"))


async def test_logout_stops_publishing_and_playing(node, client):
    engine, rec = await client(node)
    watcher, rec_w = await client(node)
    await login(watcher, "watcher")
    await login(engine, "u1")
    await engine.start_publishing_stream("mine")
    await engine.start_playing_stream("theirs")
    await rec_w.wait("stream", update_type=UpdateType.ADD, stream_id="mine")

    await engine.logout_room()
    await rec.wait("publisher", stream_id="mine", state=PublisherState.NO_PUBLISH, error_code=0)
    await rec.wait("player", stream_id="theirs", state=P.NO_PLAY, error_code=0)
    assert rec.reasons() == [R.LOGINING, R.LOGINED, R.LOGOUT]
    assert not engine.is_logged_in
    await rec_w.wait("stream", update_type=UpdateType.DELETE, stream_id="mine")
    await rec_w.wait("user", update_type=UpdateType.DELETE, user_id="u1")

    await login(engine, "u1")  # the engine can log in again
    await engine.start_publishing_stream("mine")


async def test_destroy_logs_out(node, client):
    """Others see the user leave at once (default grace is 20 s), so the logout was sent."""
    engine, rec = await client(node)
    watcher, rec_w = await client(node)
    await login(watcher, "watcher")
    await login(engine, "u1")
    await engine.start_publishing_stream("mine")
    await Engine.destroy(engine)
    assert rec.reasons()[-1] == R.LOGOUT  # callbacks are delivered before destroy returns
    assert rec.states("publisher", "mine")[-1] == PublisherState.NO_PUBLISH
    await rec_w.wait("user", update_type=UpdateType.DELETE, user_id="u1", timeout=3)


async def test_channels(node, client):
    engine, rec = await client(node)
    watcher, rec_w = await client(node)
    await login(watcher, "watcher")
    await login(engine, "u1")
    await engine.start_publishing_stream("camera")
    await engine.start_publishing_stream("screen", extra_info="share", channel=1)
    await engine.start_publishing_stream("camera")  # already publishing it: nothing to do
    with pytest.raises(EngineError) as info:
        await engine.start_publishing_stream("other", channel=1)
    assert info.value.code == 1000036

    await engine.stop_publishing_stream(channel=1)
    await rec_w.wait("stream", update_type=UpdateType.DELETE, stream_id="screen")
    await rec.wait("publisher", stream_id="screen", state=PublisherState.NO_PUBLISH)
    assert rec.states("publisher", "screen") == [PublisherState.PUBLISH_REQUESTING, PublisherState.PUBLISHING,
                                                 PublisherState.NO_PUBLISH]
    assert rec.states("publisher", "camera") == [PublisherState.PUBLISH_REQUESTING, PublisherState.PUBLISHING]
    assert rec_w.of("stream", update_type=UpdateType.DELETE, stream_id="camera") == []
