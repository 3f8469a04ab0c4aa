"""One user, one place: a second login with the same user_id kicks the first session out."""

from sfu.enums import RoomStateChangedReason, UpdateType
from sfu.errors import ErrorCode

ADD, DELETE = int(UpdateType.ADD), int(UpdateType.DELETE)


def test_duplicate_login_kicks_the_older_session(core):
    watcher = core.connect()
    watcher.login("room1", "watcher")
    old = core.connect()
    old.login("room1", "alice")
    old.publish("alice-cam", "")
    core.advance(1)
    watcher.take()

    new = core.connect()
    new.login("room1", "alice")
    kicked = old.events("room_state_changed")
    assert [(m["reason"], m["error_code"]) for m in kicked] == [
        (int(RoomStateChangedReason.KICK_OUT), int(ErrorCode.KICKED_OUT_DUPLICATE_LOGIN))]
    assert old.closed is not None and old.closed.code == ErrorCode.KICKED_OUT_DUPLICATE_LOGIN
    # the kicked session's stream ended for the others
    streams = watcher.events("room_stream_update")
    assert [(m["update_type"], [s["stream_id"] for s in m["streams"]]) for m in streams] == [(DELETE, ["alice-cam"])]
    core.advance(1)
    assert watcher.users() == [(DELETE, ["alice"]), (ADD, ["alice"])]
    assert new.users() == [(ADD, ["watcher"])]
    assert core.service.counters["kick_outs"] == 1


def test_duplicate_login_from_another_room_moves_the_user(core):
    w1, w2 = core.connect(), core.connect()
    w1.login("room1", "w1")
    w2.login("room2", "w2")
    old = core.connect()
    old.login("room1", "alice")
    core.advance(1)
    w1.take(), w2.take()
    new = core.connect()
    new.login("room2", "alice")
    core.advance(1)
    assert w1.users() == [(DELETE, ["alice"])]
    assert w2.users() == [(ADD, ["alice"])]


def test_kicking_a_detached_session(core):
    old = core.connect()
    old.login("room1", "alice")
    core.drop(old)
    new = core.connect()
    new.login("room1", "alice")
    assert old.events() == []
    assert core.service.gauges()[1234567890]["users"] == 1


def test_last_user_kicked_from_room_it_is_alone_in(core):
    old = core.connect()
    old.login("room1", "alice")
    new = core.connect()
    new.login("room1", "alice")  # the room empties and is made again
    assert core.service.room_users(1234567890, "room1") == ["alice"]
