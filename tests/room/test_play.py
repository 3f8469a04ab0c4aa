"""Playing: by stream_id in any room of the AppID; waits for a stream that is not live."""

import pytest

from sfu.enums import PlayerState, ResourceMode
from sfu.errors import ErrorCode
from tests.room.conftest import APP, APP2, SECRET2
from tests.room.test_login import fails


def player_states(client):
    return [(m["stream_id"], m["state"]) for m in client.events("player_state_update")]


def test_play_a_live_stream(core):
    pub, viewer = core.connect(), core.connect()
    pub.login("room1", "host")
    pub.publish("s1", "")
    viewer.login("room1", "viewer")
    assert viewer.play("s1", int(ResourceMode.ONLY_L3)) == {
        "stream_id": "s1", "state": int(PlayerState.PLAYING), "resource_mode": int(ResourceMode.ONLY_L3)}


def test_default_mode_is_l3_and_rtc_is_kept(core):
    v = core.connect()
    v.login("room1", "viewer")
    assert v.play("a", int(ResourceMode.DEFAULT))["resource_mode"] == int(ResourceMode.ONLY_L3)
    assert v.play("b", int(ResourceMode.ONLY_RTC))["resource_mode"] == int(ResourceMode.ONLY_RTC)
    g = core.service.gauges()[APP]
    assert (g["players_l3"], g["players_rtc"]) == (1, 1)


def test_play_waits_for_the_stream_then_follows_it(core):
    v, pub = core.connect(), core.connect()
    v.login("room1", "viewer")
    assert v.play("s1", 2)["state"] == int(PlayerState.PLAY_REQUESTING)
    pub.login("room2", "host")  # any room of the AppID
    pub.publish("s1", "")
    assert player_states(v) == [("s1", int(PlayerState.PLAYING))]
    pub.stop_publish("s1")
    assert player_states(v)[-1] == ("s1", int(PlayerState.PLAY_REQUESTING))
    pub.publish("s1", "")
    assert player_states(v)[-1] == ("s1", int(PlayerState.PLAYING))
    v.stop_play("s1")
    pub.stop_publish("s1")
    assert len(player_states(v)) == 3


def test_play_does_not_cross_apps(core):
    v, pub = core.connect(), core.connect()
    v.login("room1", "viewer")
    v.play("s1", 2)
    pub.login("room1", "host", app=APP2, secret=SECRET2)
    pub.publish("s1", "")
    assert player_states(v) == []


@pytest.mark.parametrize("mode", [int(ResourceMode.ONLY_CDN), 7, -1, "2", None, True])
def test_unsupported_modes_are_refused_never_replaced(core, mode):
    v = core.connect()
    v.login("room1", "viewer")
    fails(ErrorCode.RESOURCE_MODE_UNSUPPORTED, v.play, "s1", mode)
    assert core.service.gauges()[APP]["players_l3"] == 0


def test_play_needs_login_and_a_valid_id(core):
    v = core.connect()
    fails(ErrorCode.PLAY_NOT_LOGGED_IN, v.play, "s1", 2)
    fails(ErrorCode.PLAY_NOT_LOGGED_IN, v.stop_play, "s1")
    v.login("room1", "viewer")
    fails(ErrorCode.PLAY_STREAM_ID_INVALID, v.play, "bad id", 2)
    fails(ErrorCode.NOT_PLAYING, v.stop_play, "s1")


def test_logout_stops_playing(core):
    v, pub = core.connect(), core.connect()
    v.login("room1", "viewer")
    v.play("s1", 2)
    v.logout("room1")
    pub.login("room1", "host")
    pub.publish("s1", "")
    assert player_states(v) == []
    assert core.service.gauges()[APP]["players_l3"] == 0


def test_media_plane_is_told_when_streams_end_and_players_stop(core):
    v, pub = core.connect(), core.connect()
    v.login("room1", "viewer")
    pub.login("room1", "host")
    pub.publish("s1", "")
    v.play("s1", 3)
    sid = core.service.session_id_of(v.conn_id)
    pub.stop_publish("s1")
    v.logout("room1")
    assert core.media == [("stream_ended", "s1", None), ("player_removed", "s1", sid)]
