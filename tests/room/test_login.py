"""Login and logout: tokens, identifiers, one room per session, AppID isolation."""

import pytest

from sfu.errors import ErrorCode, SfuError
from tests.room.conftest import APP, APP2, SECRET, SECRET2


def fails(code, fn, *args, **kwargs) -> SfuError:
    with pytest.raises(SfuError) as exc:
        fn(*args, **kwargs)
    assert exc.value.code == code, exc.value
    return exc.value


def test_login_returns_session_and_timing(core):
    a = core.connect()
    result = a.login("room1", "alice")
    assert result["session_id"] and result["resume_token"] and result["session_id"] != result["resume_token"]
    # 128 random bits in hex: safe as a command-line argument (`sfu rtp-stop ID`: never taken for an option)
    assert all(len(v) == 32 and set(v) <= set("0123456789abcdef") for v in (result["session_id"], result["resume_token"]))
    assert result["heartbeat_interval"] == core.config.heartbeat_interval
    assert result["reconnect_grace"] == core.config.reconnect_grace
    assert result["token_expire"] == int(core.wallclock) + 3600
    assert core.service.room_users(APP, "room1") == ["alice"]


def test_legacy_cbc_token_logs_in(core):
    a = core.connect()
    a.login("room1", "alice", token=core.token("alice", legacy=True))
    assert core.service.room_users(APP, "room1") == ["alice"]


@pytest.mark.parametrize("case, reason", [
    ("garbage", "malformed"),
    ("wrong_secret", "bad_signature"),
    ("expired", "expired"),
    ("other_user", "user_id_mismatch"),
    ("other_app", "app_id_mismatch"),
    ("other_room", "room_id_mismatch"),
    ("login_denied", "login_denied"),
])
def test_bad_token_is_1002067_with_reason(core, case, reason):
    tokens = {
        "garbage": "04not-a-token",
        "wrong_secret": core.token("alice", secret=SECRET2),
        "expired": core.token("alice", ttl=1),
        "other_user": core.token("bob"),
        "other_app": core.token("alice", app=APP2),  # right secret, wrong app_id inside
        "other_room": core.token("alice", room_id="room2"),
        "login_denied": core.token("alice", login=False),
    }
    token = tokens[case]
    if case == "expired":
        core.advance(2)
    a = core.connect()
    err = fails(ErrorCode.TOKEN_INVALID, a.login, "room1", "alice", token=token)
    assert err.extended_data["reason"] == reason
    assert core.service.room_users(APP, "room1") == []
    assert core.service.login_failures[1002067] == 1


def test_unknown_app_id(core):
    a = core.connect()
    token = core.token("alice")
    for app in (777, -1, 2**32, "1234567890", True):
        fails(ErrorCode.APP_ID_INVALID, a.login, "room1", "alice", app=app, token=token)


@pytest.mark.parametrize("room, user, name, code", [
    ("", "alice", "alice", ErrorCode.ROOM_ID_INVALID),
    ("r" * 129, "alice", "alice", ErrorCode.ROOM_ID_INVALID),
    ("room 1", "alice", "alice", ErrorCode.ROOM_ID_INVALID),
    ("room1", "", "x", ErrorCode.USER_ID_INVALID),
    ("room1", "u" * 65, "x", ErrorCode.USER_ID_INVALID),
    ("room1", "al/ice", "x", ErrorCode.USER_ID_INVALID),
    ("room1", "alice", "n" * 257, ErrorCode.USER_NAME_INVALID),
    ("room1", "alice", "bad\nname", ErrorCode.USER_NAME_INVALID),
])
def test_identifier_rules(core, room, user, name, code):
    a = core.connect()
    fails(code, a.login, room, user, name=name, token=core.token(user or "x"))


def test_a_session_is_in_one_room(core):
    a = core.connect()
    a.login("room1", "alice")
    fails(ErrorCode.ROOM_COUNT_EXCEED, a.login, "room2", "alice")
    fails(ErrorCode.ALREADY_LOGGED_IN, a.login, "room1", "alice")
    assert a.logout("room1") == {}
    a.login("room2", "alice")
    assert core.service.room_users(APP, "room2") == ["alice"]
    assert core.service.room_users(APP, "room1") == []


def test_logout_of_wrong_room_and_before_login(core):
    a = core.connect()
    fails(ErrorCode.NOT_LOGGED_IN, a.logout, "room1")
    a.login("room1", "alice")
    fails(ErrorCode.NOT_IN_ROOM, a.logout, "room9")


def test_room_is_created_by_first_login_and_deleted_when_empty(core):
    a, b = core.connect(), core.connect()
    a.login("room1", "alice")
    b.login("room1", "bob")
    assert core.service.gauges()[APP]["rooms"] == 1
    a.logout("room1")
    assert core.service.gauges()[APP]["rooms"] == 1
    b.logout("room1")
    assert core.service.gauges()[APP]["rooms"] == 0


def test_appids_never_see_each_other(core):
    a, b = core.connect(), core.connect()
    a.login("room1", "alice", notify=True)
    b.login("room1", "alice", app=APP2, secret=SECRET2, notify=True)  # same room name, same user id
    b.publish("s1", "")
    core.advance(1)
    assert a.closed is None and b.closed is None  # no kick-out across apps
    assert a.events() == [] and b.events() == []
    assert core.service.room_users(APP, "room1") == ["alice"]
    assert core.service.room_streams(APP, "room1") == []
    # the same stream id is free in the other app
    assert a.publish("s1", "")["state"] == 2
    # a token of one app does not open the other
    c = core.connect()
    fails(ErrorCode.TOKEN_INVALID, c.login, "room1", "carol", app=APP2, secret=SECRET2,
          token=core.token("carol", app=APP, secret=SECRET))
