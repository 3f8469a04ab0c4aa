"""room_token_will_expire 30 s before expiry, renew_token, and the kick-out of an expired session."""

from sfu.errors import ErrorCode
from tests.room.conftest import APP
from tests.room.test_login import fails


def warnings(client):
    return [(m["room_id"], m["remaining_seconds"]) for m in client.events("room_token_will_expire")]


def test_warning_30_seconds_before_expiry_then_kick_out(make_core):
    core = make_core(session_timeout=1000.0, heartbeat_interval=10.0)
    a = core.connect()
    a.login("room1", "alice", ttl=100)
    core.advance(69.9)
    assert warnings(a) == []
    core.advance(0.1)
    assert warnings(a) == [("room1", 30)]
    core.advance(29.9)
    assert a.closed is None
    core.advance(0.1)
    kicked = a.events("room_state_changed")
    assert [(m["reason"], m["error_code"]) for m in kicked] == [(6, int(ErrorCode.TOKEN_EXPIRED_KICK_OUT))]
    assert a.closed.code == ErrorCode.TOKEN_EXPIRED_KICK_OUT
    assert core.service.room_users(APP, "room1") == []


def test_short_token_warns_at_once(core):
    a = core.connect()
    a.login("room1", "alice", ttl=20)
    core.advance(0)
    assert warnings(a) == [("room1", 20)]


def test_renew_moves_the_deadlines(make_core):
    core = make_core(session_timeout=1000.0, heartbeat_interval=10.0)
    a = core.connect()
    a.login("room1", "alice", ttl=100)
    core.advance(80)
    assert warnings(a) == [("room1", 30)]
    result = a.renew_token("room1", core.token("alice", ttl=100))
    assert result["token_expire"] == int(core.wallclock) + 100
    core.advance(69)
    assert a.closed is None and len(warnings(a)) == 1
    core.advance(1)
    assert len(warnings(a)) == 2
    core.advance(30)
    assert a.closed.code == ErrorCode.TOKEN_EXPIRED_KICK_OUT


def test_renew_is_checked_like_login(core):
    a = core.connect()
    a.login("room1", "alice")
    fails(ErrorCode.TOKEN_INVALID, a.renew_token, "room1", core.token("bob"))
    fails(ErrorCode.TOKEN_INVALID, a.renew_token, "room1", core.token("alice", room_id="room2"))
    fails(ErrorCode.TOKEN_INVALID, a.renew_token, "room1", "04garbage")
    fails(ErrorCode.NOT_IN_ROOM, a.renew_token, "room2", core.token("alice"))
    b = core.connect()
    fails(ErrorCode.NOT_LOGGED_IN, b.renew_token, "room1", core.token("bob"))


def test_renewed_privileges_apply_to_later_publishes(core):
    a = core.connect()
    a.login("room1", "alice")
    a.renew_token("room1", core.token("alice", publish=False))
    fails(ErrorCode.PUBLISH_PRIVILEGE_DENIED, a.publish, "s1", "")
