"""Liveness: the auth window, heartbeats, the session timeout, the reconnect grace window."""

from sfu.enums import UpdateType
from sfu.errors import ErrorCode
from tests.room.conftest import APP
from tests.room.test_login import fails

ADD, DELETE = int(UpdateType.ADD), int(UpdateType.DELETE)


def test_unauthenticated_connection_is_closed_after_auth_timeout(make_core):
    core = make_core(auth_timeout=2.0)
    a = core.connect()
    core.advance(1.99)
    assert a.closed is None
    core.advance(0.01)
    assert a.closed.code == ErrorCode.AUTH_TIMEOUT
    assert core.service.next_timer() is None


def test_logged_in_connection_has_no_auth_deadline_and_logout_rearms_it(make_core):
    core = make_core(auth_timeout=2.0, session_timeout=100.0, heartbeat_interval=1.0)
    a = core.connect()
    a.login("room1", "alice")
    core.advance(5)
    assert a.closed is None
    a.logout("room1")
    core.advance(2)
    assert a.closed.code == ErrorCode.AUTH_TIMEOUT


def test_heartbeats_keep_a_session_and_silence_detaches_it(make_core):
    core = make_core(heartbeat_interval=1.0, session_timeout=3.0, reconnect_grace=5.0)
    w, a = core.connect(), core.connect()
    w.login("room1", "watcher")
    a.login("room1", "alice")
    for _ in range(10):
        core.advance(1.0)
        a.heartbeat()
        w.heartbeat()
    assert a.closed is None
    core.advance(1.0)
    w.heartbeat()
    w.take()
    core.advance(1.0)
    w.heartbeat()
    core.advance(1.0)  # alice silent for 3 s: detached, her socket closed
    w.heartbeat()
    assert a.closed.code == ErrorCode.CONNECTION_LOST
    assert core.service.room_users(APP, "room1") == ["watcher", "alice"]  # still in the grace window
    for _ in range(4):
        core.advance(1.0)
        w.heartbeat()
    assert w.users() == []
    core.advance(1.0)  # grace over: removed
    core.advance(core.config.user_event_batch_interval)
    assert w.users() == [(DELETE, ["alice"])]
    assert core.service.counters["sessions_timed_out"] == 1


def test_killed_client_is_removed_after_the_grace_window(make_core):
    core = make_core(reconnect_grace=4.0)
    w, a = core.connect(), core.connect()
    w.login("room1", "watcher")
    a.login("room1", "alice")
    a.publish("cam", "")
    core.advance(1)
    w.take()
    core.drop(a)  # socket gone, no logout
    core.advance(3.99)
    assert w.events() == []
    core.advance(0.01)
    assert [m["update_type"] for m in w.events("room_stream_update")] == [DELETE]
    core.advance(1)
    assert w.users() == [(DELETE, ["alice"])]


def test_resume_within_grace_keeps_the_place_and_delivers_what_was_missed(make_core):
    core = make_core(reconnect_grace=10.0)
    w, a = core.connect(), core.connect()
    w.login("room1", "watcher")
    login = a.login("room1", "alice")
    a.publish("cam", "")
    core.advance(1)
    w.take(), a.take()
    core.drop(a)
    p = core.connect()
    p.login("room1", "bob")
    p.publish("bob-cam", "")
    core.advance(5)
    a2 = core.connect()
    result = a2.resume(login["session_id"], login["resume_token"])
    assert result["room_id"] == "room1"
    assert [m["event"] for m in a2.events()] == ["room_stream_update", "room_user_update"]
    assert w.events("room_stream_update") and all(m["update_type"] == ADD for m in w.events("room_stream_update"))
    assert w.users() == [(ADD, ["bob"])]  # alice never left
    core.advance(10)  # past the old grace deadline: the resumed session is not removed
    a2.heartbeat()
    assert core.service.room_streams(APP, "room1") == ["cam", "bob-cam"]


def test_resume_after_grace_fails(make_core):
    core = make_core(reconnect_grace=2.0)
    a = core.connect()
    login = a.login("room1", "alice")
    core.drop(a)
    core.advance(2.0)
    a2 = core.connect()
    fails(ErrorCode.RECONNECT_FAILED, a2.resume, login["session_id"], login["resume_token"])


def test_resume_needs_the_secret_token(core):
    a = core.connect()
    login = a.login("room1", "alice")
    core.drop(a)
    a2 = core.connect()
    fails(ErrorCode.RECONNECT_FAILED, a2.resume, login["session_id"], "guess")
    fails(ErrorCode.RECONNECT_FAILED, a2.resume, "nope", login["resume_token"])
    fails(ErrorCode.RECONNECT_FAILED, a2.resume, None, None)


def test_resume_takes_over_a_half_open_connection(core):
    a = core.connect()
    login = a.login("room1", "alice")
    a2 = core.connect()
    a2.resume(login["session_id"], login["resume_token"])
    assert a.closed is not None and a.closed.code == ErrorCode.CONNECTION_LOST
    a2.heartbeat()
    fails(ErrorCode.ALREADY_LOGGED_IN, a2.resume, login["session_id"], login["resume_token"])
    assert core.service.room_users(APP, "room1") == ["alice"]


def test_requests_on_a_closed_connection(core):
    a = core.connect()
    core.drop(a)
    fails(ErrorCode.NOT_CONNECTED, a.heartbeat)


def test_a_session_without_heartbeats_has_no_liveness_timeout(make_core):
    """The HTTP API's sessions (heartbeats=False): no client heartbeats them, so silence, or a stall
    of the node longer than session_timeout, does not end them; logout and token expiry still do."""
    core = make_core(heartbeat_interval=1.0, session_timeout=3.0, reconnect_grace=5.0)
    w, a, h = core.connect(), core.connect(), core.connect()
    w.login("room1", "watcher")
    a.login("room1", "alice")
    h.login("room1", "http-cam", heartbeats=False, ttl=60)
    core.advance(30.0)  # nobody heartbeats: alice is detached then removed, the HTTP session stays
    assert a.closed.code == ErrorCode.CONNECTION_LOST and w.closed.code == ErrorCode.CONNECTION_LOST
    assert h.closed is None
    assert core.service.room_users(APP, "room1") == ["http-cam"]
    core.advance(31.0)  # its token expires: kicked out as any session is
    assert h.closed.code == ErrorCode.TOKEN_EXPIRED_KICK_OUT


def _stall(core, seconds):
    """The node stands still for `seconds`, then handles the timers that fell due meanwhile (late)
    before it reads anything its clients sent meanwhile."""
    core.now += seconds
    core.service.handle_timer(core.now)
    core.drain()


def test_a_stall_of_the_node_is_not_blamed_on_its_clients(make_core):
    core = make_core(heartbeat_interval=1.0, session_timeout=3.0, reconnect_grace=5.0, auth_timeout=2.0)
    alive, dead, away, new = core.connect(), core.connect(), core.connect(), core.connect()
    alive.login("room1", "alive")
    dead.login("room1", "dead")
    login = away.login("room1", "away")
    core.advance(0.5)
    core.drop(away)  # detached: its grace runs
    _stall(core, 20.0)  # every LIVE, GRACE and AUTH deadline passed while the node stood still
    assert (alive.closed, dead.closed, new.closed) == (None, None, None)
    assert core.service.room_users(APP, "room1") == ["alive", "dead", "away"]
    assert core.service.counters["checks_deferred"] == 4
    # then it reads what waited in the sockets: a heartbeat, a resume, a login
    alive.heartbeat()
    back = core.connect()
    assert back.resume(login["session_id"], login["resume_token"])["room_id"] == "room1"
    new.login("room1", "new")
    core.advance(1.0)  # one heartbeat interval later the checks run: only the silent client goes
    assert dead.closed.code == ErrorCode.CONNECTION_LOST
    assert (alive.closed, back.closed, new.closed) == (None, None, None)
    alive.heartbeat()
    back.heartbeat()
    new.heartbeat()
    core.advance(1.0)
    assert (alive.closed, back.closed, new.closed) == (None, None, None)


def test_a_check_is_deferred_once_on_a_node_that_stays_late(make_core):
    """A node whose timers all run late (overloaded) still judges: the second late check acts."""
    core = make_core(heartbeat_interval=1.0, session_timeout=3.0, reconnect_grace=5.0)
    a = core.connect()
    a.login("room1", "alice")
    _stall(core, 10.0)
    assert a.closed is None
    _stall(core, 10.0)
    assert a.closed.code == ErrorCode.CONNECTION_LOST
