"""Publishing: stream events, uniqueness per AppID, privilege and stream list in the token."""

import pytest

from sfu.enums import PublisherState, UpdateType
from sfu.errors import ErrorCode, SfuError
from tests.room.test_login import fails

ADD, DELETE = int(UpdateType.ADD), int(UpdateType.DELETE)


def streams(client):
    return [(m["update_type"], [(s["stream_id"], s["user"]["user_id"], s["extra_info"]) for s in m["streams"]])
            for m in client.events("room_stream_update")]


def test_publish_tells_everyone_else_in_the_room_at_once(core):
    a, b, c, other_room = core.connect(), core.connect(), core.connect(), core.connect()
    a.login("room1", "alice", notify=False)
    b.login("room1", "bob", notify=True)
    other_room.login("room2", "dave")
    result = c.login("room1", "carol") and c.publish("cam", "hello")
    assert result == {"stream_id": "cam", "state": int(PublisherState.PUBLISHING)}
    assert streams(a) == [(ADD, [("cam", "carol", "hello")])]  # no notify flag needed for streams
    assert streams(b) == [(ADD, [("cam", "carol", "hello")])]
    assert streams(c) == []  # not told of its own stream
    assert streams(other_room) == []
    c.stop_publish("cam")
    assert streams(a)[-1] == (DELETE, [("cam", "carol", "hello")])


def test_login_gets_streams_already_published(core):
    a = core.connect()
    a.login("room1", "alice")
    a.publish("s1", "")
    a.publish("s2", "x")
    b = core.connect()
    b.login("room1", "bob", notify=False)
    assert streams(b) == [(ADD, [("s1", "alice", ""), ("s2", "alice", "x")])]


def test_stream_id_is_unique_in_the_app_across_rooms(core):
    a, b = core.connect(), core.connect()
    a.login("room1", "alice")
    b.login("room2", "bob")
    a.publish("s1", "")
    fails(ErrorCode.STREAM_ID_IN_USE, b.publish, "s1", "")
    assert a.publish("s1", "") == {"stream_id": "s1", "state": 2}  # again by its owner: no change
    a.stop_publish("s1")
    assert b.publish("s1", "")["state"] == 2


@pytest.mark.parametrize("stream_id", ["", "s" * 257, "bad id", "a/b", None, 5])
def test_stream_id_rules(core, stream_id):
    a = core.connect()
    a.login("room1", "alice")
    fails(ErrorCode.STREAM_ID_INVALID, a.publish, stream_id, "")


def test_stream_id_of_256_allowed_characters(core):
    a = core.connect()
    a.login("room1", "alice")
    sid = ("Az09_.-" * 40)[:256]
    assert a.publish(sid, "")["stream_id"] == sid


def test_extra_info_limit(core):
    a = core.connect()
    a.login("room1", "alice")
    fails(ErrorCode.EXTRA_INFO_TOO_LONG, a.publish, "s1", "x" * 1025)
    fails(ErrorCode.INVALID_ARGUMENT, a.publish, "s1", 3)
    assert a.publish("s1", "é" * 512)["state"] == 2  # 1024 bytes


def test_publish_needs_login(core):
    a = core.connect()
    fails(ErrorCode.PUBLISH_NOT_LOGGED_IN, a.publish, "s1", "")
    fails(ErrorCode.PUBLISH_NOT_LOGGED_IN, a.stop_publish, "s1")


def test_token_that_denies_publish(core):
    a = core.connect()
    a.login("room1", "alice", publish=False)
    err = fails(ErrorCode.PUBLISH_PRIVILEGE_DENIED, a.publish, "s1", "")
    assert "s1" in err.message


def test_token_stream_list(core):
    a = core.connect()
    a.login("room1", "alice", stream_ids=["allowed"])
    fails(ErrorCode.PUBLISH_PRIVILEGE_DENIED, a.publish, "other", "")
    assert a.publish("allowed", "")["state"] == 2


def test_stop_a_stream_not_mine(core):
    a, b = core.connect(), core.connect()
    a.login("room1", "alice")
    b.login("room1", "bob")
    a.publish("s1", "")
    fails(ErrorCode.NOT_PUBLISHING, b.stop_publish, "s1")
    fails(ErrorCode.NOT_PUBLISHING, b.stop_publish, "never")


def test_logout_ends_the_sessions_streams(core):
    a, b = core.connect(), core.connect()
    a.login("room1", "alice")
    b.login("room1", "bob")
    a.publish("s1", "")
    a.publish("s2", "")
    a.logout("room1")
    assert streams(b) == [(ADD, [("s1", "alice", "")]), (ADD, [("s2", "alice", "")]),
                          (DELETE, [("s1", "alice", "")]), (DELETE, [("s2", "alice", "")])]
    assert isinstance(SfuError, type)
