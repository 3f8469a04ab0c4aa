"""A dropped connection resumes within the grace window (RECONNECTING -> RECONNECTED), keeping the
session's place and the events that happened meanwhile; otherwise RECONNECT_FAILED."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from sfu.client import (Engine, EngineError, PlayerConfig, PlayerState, PublisherState, ResourceMode,
                        RoomStateChangedReason, UpdateType)
from sfu.config import NodeConfig
from sfu.node import Node
from tests.client.recording import login
from tests.conftest import APP_ID, make_config, make_token

R = RoomStateChangedReason
ADD, DELETE = UpdateType.ADD, UpdateType.DELETE
SHORT = {"heartbeat_interval": 0.2, "session_timeout": 1.0, "reconnect_grace": 2.0}


async def until(condition, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def detached(node) -> int:
    return node.service.gauges()[APP_ID]["detached"]


async def host_and_viewer(node, client, host_target=None):
    viewer, rec_v = await client(node)
    host, rec_h = await client(host_target or node)
    await login(viewer, "viewer")
    await login(host, "host")
    await host.start_publishing_stream("live")
    await viewer.start_playing_stream("live", PlayerConfig(ResourceMode.ONLY_L3))
    await rec_v.wait("player", stream_id="live", state=PlayerState.PLAYING)
    await rec_v.wait("user", update_type=ADD, user_id="host")
    return host, rec_h, viewer, rec_v


async def test_network_drop_resumes_the_session(node_factory, client):
    node = await node_factory(session=SHORT)
    host, rec_h, viewer, rec_v = await host_and_viewer(node, client)
    session_id = host.session_id
    mark = rec_h.mark()

    host.connection.abort_transport()
    await rec_h.wait("room_state", reason=R.RECONNECTED, start=mark)
    assert [(e.reason, e.error_code) for e in rec_h.of("room_state", mark)] == [(R.RECONNECTING, 0), (R.RECONNECTED, 0)]
    assert host.is_logged_in and host.room_id == "room1" and host.session_id == session_id

    # Proof of absence: let the node's grace window (and two session timeouts) pass.
    await asyncio.sleep(SHORT["reconnect_grace"] + 0.5)
    assert rec_v.of("user", update_type=DELETE) == [] and rec_v.of("stream", update_type=DELETE) == []
    assert rec_v.states("player", "live")[-1] == PlayerState.PLAYING
    assert rec_h.reasons(mark) == [R.RECONNECTING, R.RECONNECTED]  # heartbeats kept it alive since
    assert rec_h.of("publisher", start=mark) == []

    await host.stop_publishing_stream()  # still the host's stream
    await rec_v.wait("stream", update_type=DELETE, stream_id="live")
    await rec_v.wait("player", stream_id="live", state=PlayerState.PLAY_REQUESTING)


async def test_events_during_the_drop_are_delivered_after_resume(node_factory, client, proxy_factory):
    node = await node_factory(session=SHORT)
    proxy = await proxy_factory(node)
    watcher, rec_w = await client(proxy.ws_url)
    other, rec_o = await client(node)
    await login(watcher, "watcher")
    await login(other, "other")
    await rec_w.wait("user", update_type=ADD, user_id="other")
    mark = rec_w.mark()

    proxy.cut()
    await rec_w.wait("room_state", reason=R.RECONNECTING, start=mark)
    await until(lambda: detached(node) == 1)
    newcomer, _ = await client(node)
    await login(newcomer, "newcomer")
    await newcomer.start_publishing_stream("during-drop", extra_info="x")
    await rec_o.wait("stream", update_type=ADD, stream_id="during-drop")
    await rec_o.wait("user", update_type=ADD, user_id="newcomer")
    proxy.restore()

    resumed = await rec_w.wait("room_state", reason=R.RECONNECTED, start=mark)
    after = rec_w.events.index(resumed)
    await rec_w.wait("user", update_type=ADD, user_id="newcomer", start=after)
    stream = await rec_w.wait("stream", update_type=ADD, stream_id="during-drop", start=after)
    assert stream.streams[0].user.user_id == "newcomer" and stream.streams[0].extra_info == "x"
    assert len(rec_w.of("user", user_id="newcomer")) == 1


async def test_requests_made_while_reconnecting_wait_for_the_resume(node_factory, client, proxy_factory):
    node = await node_factory(session=SHORT)
    proxy = await proxy_factory(node)
    host, rec_h, viewer, rec_v = await host_and_viewer(node, client, proxy.ws_url)
    mark = rec_h.mark()
    proxy.cut()
    await rec_h.wait("room_state", reason=R.RECONNECTING, start=mark)
    waiting = asyncio.create_task(host.start_publishing_stream("second", channel=1))
    await asyncio.sleep(0)
    assert not waiting.done()
    proxy.restore()
    await waiting
    await rec_h.wait("publisher", stream_id="second", state=PublisherState.PUBLISHING)
    assert rec_h.reasons(mark) == [R.RECONNECTING, R.RECONNECTED]
    await rec_v.wait("stream", update_type=ADD, stream_id="second")


async def test_silent_connection_is_declared_dead_and_resumed(node_factory, client, proxy_factory):
    node = await node_factory(session=SHORT)
    proxy = await proxy_factory(node)
    host, rec_h, viewer, rec_v = await host_and_viewer(node, client, proxy.ws_url)
    mark = rec_h.mark()
    loop = asyncio.get_running_loop()
    started = loop.time()

    proxy.blackhole()  # the socket stays open but nothing gets through; new connections do
    with pytest.raises(EngineError) as info:
        await host.start_playing_stream("in-flight")
    assert info.value.code == 1000004 and info.value.name == "CONNECTION_LOST"
    assert loop.time() - started >= SHORT["session_timeout"] - SHORT["heartbeat_interval"] - 0.05
    await rec_h.wait("player", stream_id="in-flight", state=PlayerState.NO_PLAY, error_code=1000004)
    await rec_h.wait("room_state", reason=R.RECONNECTED, start=mark)
    assert rec_h.reasons(mark) == [R.RECONNECTING, R.RECONNECTED]
    assert host.is_logged_in

    await host.stop_publishing_stream()
    await rec_v.wait("stream", update_type=DELETE, stream_id="live")
    assert rec_v.of("user", update_type=DELETE) == []


async def test_a_stop_lost_with_the_connection_is_repeated_after_resume(node_factory, client, proxy_factory):
    node = await node_factory(session=SHORT)
    proxy = await proxy_factory(node)
    host, rec_h, viewer, rec_v = await host_and_viewer(node, client, proxy.ws_url)
    mark = rec_h.mark()
    proxy.blackhole()
    await host.stop_publishing_stream()  # in flight when the silence is noticed, sent again once resumed
    await rec_h.wait("publisher", stream_id="live", state=PublisherState.NO_PUBLISH, error_code=0)
    assert rec_h.reasons(mark) == [R.RECONNECTING, R.RECONNECTED]
    await rec_v.wait("stream", update_type=DELETE, stream_id="live")


async def test_reconnect_fails_when_the_node_is_gone(node_factory, client):
    node = await node_factory(session=SHORT)
    host, rec = await client(node)
    await login(host, "host")
    await host.start_publishing_stream("live")
    await host.start_playing_stream("elsewhere")
    mark = rec.mark()
    loop = asyncio.get_running_loop()
    started = loop.time()

    await node.stop()
    await rec.wait("room_state", reason=R.RECONNECTING, start=mark)
    waiting = asyncio.create_task(host.renew_token("room1", make_token("host")))
    failed = await rec.wait("room_state", reason=R.RECONNECT_FAILED, start=mark, timeout=10)
    assert failed.error_code == 1002053
    assert loop.time() - started >= SHORT["reconnect_grace"] - 0.1
    await rec.wait("publisher", stream_id="live", state=PublisherState.NO_PUBLISH, error_code=1002053)
    await rec.wait("player", stream_id="elsewhere", state=PlayerState.NO_PLAY, error_code=1002053)
    assert rec.reasons(mark) == [R.RECONNECTING, R.RECONNECT_FAILED]
    assert not host.is_logged_in and host.session_id is None
    with pytest.raises(EngineError) as info:
        await waiting
    assert info.value.code == 1000003
    with pytest.raises(EngineError) as info:
        await host.start_publishing_stream("live")
    assert info.value.code == 1003001


async def test_restarted_node_refuses_the_resume_and_a_new_login_works(node_factory, client):
    """The node answers RECONNECT_FAILED for a session it does not know: the SDK gives up at once."""
    node = await node_factory(session={**SHORT, "reconnect_grace": 30.0})
    host, rec = await client(node)
    await login(host, "host")
    mark = rec.mark()
    loop = asyncio.get_running_loop()

    await node.stop()
    await rec.wait("room_state", reason=R.RECONNECTING, start=mark)
    config = make_config(session=SHORT)
    restarted = Node(replace(config, node=NodeConfig(host="127.0.0.1", port=node.port)))
    await restarted.start()
    try:
        started = loop.time()
        failed = await rec.wait("room_state", reason=R.RECONNECT_FAILED, start=mark, timeout=10)
        assert failed.error_code == 1002053
        assert loop.time() - started < 10  # long before the 30 s grace
        await login(host, "host")
        await rec.wait("room_state", reason=R.LOGINED, start=mark)
        assert host.is_logged_in
        await host.logout_room()
    finally:
        await restarted.stop()


async def test_destroy_while_reconnecting_returns_at_once(node_factory, client, proxy_factory):
    node = await node_factory(session=SHORT)
    proxy = await proxy_factory(node)
    host, rec_h, viewer, rec_v = await host_and_viewer(node, client, proxy.ws_url)
    mark = rec_h.mark()
    proxy.cut()
    await rec_h.wait("room_state", reason=R.RECONNECTING, start=mark)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await Engine.destroy(host)
    assert loop.time() - started < 1.0
    assert rec_h.reasons(mark) == [R.RECONNECTING, R.LOGOUT]
    assert rec_h.states("publisher", "live")[-1] == PublisherState.NO_PUBLISH
    # the node never heard a logout: the host leaves when its grace window runs out
    await rec_v.wait("user", update_type=DELETE, user_id="host", timeout=SHORT["reconnect_grace"] + 3)


async def test_events_sent_into_a_silent_socket_reach_the_client_after_resume(node_factory, client, proxy_factory):
    """The node wrote the event into a socket it did not yet know was dead; resume with
    last_event_seq gets it again, once."""
    node = await node_factory(session=SHORT)
    proxy = await proxy_factory(node)
    host, rec_h = await client(proxy.ws_url)
    other, _ = await client(node)
    await login(host, "host")
    await login(other, "other")
    await rec_h.wait("user", update_type=ADD, user_id="other")
    proxy.blackhole()
    await other.start_publishing_stream("published-during-silence")
    resumed = await rec_h.wait("room_state", reason=R.RECONNECTED)
    await rec_h.wait("stream", update_type=ADD, stream_id="published-during-silence",
                     start=rec_h.events.index(resumed))
    await other.stop_publishing_stream()  # an event after the replay: the replayed ones came before it
    await rec_h.wait("stream", update_type=DELETE, stream_id="published-during-silence")
    assert len(rec_h.of("stream", stream_id="published-during-silence", update_type=ADD)) == 1
    assert len(rec_h.of("user", user_id="other", update_type=ADD)) == 1  # the login snapshot, not replayed
