"""Configured limits per AppID give clear errors."""

from sfu.config import AppConfig
from sfu.errors import ErrorCode
from tests.room.conftest import APP, SECRET
from tests.room.test_login import fails


def limited(make_core, **limits):
    return make_core(apps=[AppConfig(APP, SECRET, **limits)])


def test_max_users_per_room(make_core):
    core = limited(make_core, max_users_per_room=2)
    core.connect().login("room1", "a")
    core.connect().login("room1", "b")
    err = fails(ErrorCode.ROOM_USER_LIMIT, core.connect().login, "room1", "c")
    assert "max_users_per_room" in err.message
    core.connect().login("room1", "b")  # a duplicate login replaces, it does not add


def test_max_rooms(make_core):
    core = limited(make_core, max_rooms=1)
    core.connect().login("room1", "a")
    fails(ErrorCode.APP_ROOM_LIMIT, core.connect().login, "room2", "b")
    core.connect().login("room1", "c")


def test_max_streams_per_room(make_core):
    core = limited(make_core, max_streams_per_room=1)
    a = core.connect()
    a.login("room1", "a")
    a.publish("s1", "")
    fails(ErrorCode.ROOM_STREAM_LIMIT, a.publish, "s2", "")


def test_max_players_per_stream(make_core):
    core = limited(make_core, max_players_per_stream=1)
    a, b = core.connect(), core.connect()
    a.login("room1", "a")
    b.login("room1", "b")
    a.play("s1", 2)
    a.play("s1", 3)  # the same player changing mode is not a new player
    fails(ErrorCode.STREAM_PLAYER_LIMIT, b.play, "s1", 2)
