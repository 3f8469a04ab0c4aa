"""room_user_update: notify-only, snapshot first, batched, ordered, never about oneself."""

from sfu.enums import UpdateType
from tests.room.conftest import APP

ADD, DELETE = int(UpdateType.ADD), int(UpdateType.DELETE)


def test_only_notify_sessions_get_user_events(core):
    a, b, c = core.connect(), core.connect(), core.connect()
    a.login("room1", "alice", notify=True)
    b.login("room1", "bob", notify=False)
    c.login("room1", "carol", notify=True)
    core.advance(core.config.user_event_batch_interval)
    assert a.users() == [(ADD, ["bob", "carol"])]
    assert b.users() == []
    assert c.users() == [(ADD, ["alice", "bob"])]  # the snapshot on login, nothing again later


def test_snapshot_comes_first_then_batched_updates(core):
    a = core.connect()
    a.login("room1", "alice")
    b = core.connect()
    b.login("room1", "bob")
    assert b.users() == [(ADD, ["alice"])]  # at once, before any timer
    assert a.users() == []  # batched: not yet
    core.advance(core.config.user_event_batch_interval / 2)
    assert a.users() == []
    core.advance(core.config.user_event_batch_interval / 2)
    assert a.users() == [(ADD, ["bob"])]


def test_runs_keep_their_order_and_a_burst_is_one_event(core):
    a = core.connect()
    a.login("room1", "alice")
    others = [core.connect() for _ in range(4)]
    for i, c in enumerate(others):
        c.login("room1", f"u{i}", notify=False)
    others[1].logout("room1")
    others[2].logout("room1")
    late = core.connect()
    late.login("room1", "u9", notify=False)
    core.advance(1)
    assert a.users() == [(ADD, ["u0", "u1", "u2", "u3"]), (DELETE, ["u1", "u2"]), (ADD, ["u9"])]


def test_a_user_who_left_before_i_joined_is_not_reported(core):
    a = core.connect()
    a.login("room1", "alice", notify=False)
    b = core.connect()
    b.login("room1", "bob", notify=False)
    b.logout("room1")  # pending DELETE bob, queued before carol's login
    c = core.connect()
    c.login("room1", "carol", notify=True)
    assert c.users() == [(ADD, ["alice"])]
    core.advance(1)
    assert c.users() == [(ADD, ["alice"])]  # neither ADD nor DELETE bob, no repeat of alice


def test_logout_is_seen_as_delete(core):
    a, b = core.connect(), core.connect()
    a.login("room1", "alice")
    b.login("room1", "bob")
    core.advance(1)
    a.take()
    b.logout("room1")
    core.advance(1)
    assert a.users() == [(DELETE, ["bob"])]


def test_room_of_2000_users(make_core):
    core = make_core()
    watchers = []
    for i in range(2000):
        c = core.connect()
        c.login("big", f"user{i}", notify=(i % 10 == 0))
        if i % 10 == 0:
            watchers.append((i, c))
        if i % 100 == 99:
            core.advance(core.config.user_event_batch_interval)
    core.advance(1)
    assert len(core.service.room_users(APP, "big")) == 2000
    for i, c in watchers:
        seen: set[str] = set()
        for m in c.events("room_user_update"):
            assert m["update_type"] == ADD
            assert len(m["users"]) <= 500
            names = [u["user_id"] for u in m["users"]]
            assert not seen.intersection(names), "a user was announced twice"
            seen.update(names)
        assert seen == {f"user{j}" for j in range(2000)} - {f"user{i}"}
    # the last one to join got the snapshot in chunks of 500: 1999 users -> 4 events
    last = watchers[-1][1]
    assert [len(m["users"]) for m in last.events("room_user_update")][:4] == [500, 500, 500, 490]
    # batching: the first watcher got far fewer events than users joined
    assert len(watchers[0][1].events("room_user_update")) <= 25
