"""Numbered events and replay on resume: nothing a dead socket swallowed is lost."""

from sfu.errors import ErrorCode
from sfu.room import service as service_module
from tests.room.test_login import fails


def seqs(client):
    return [m["seq"] for m in client.events()]


def test_events_are_numbered_per_session(core):
    a, b = core.connect(), core.connect()
    a.login("room1", "alice")
    b.login("room1", "bob")
    b.publish("s1", "")
    b.publish("s2", "")
    core.advance(1)
    assert seqs(a) == [1, 2, 3]  # two stream ADDs, then the batched user ADD
    assert seqs(b) == [1]  # the login snapshot of alice


def test_resume_replays_what_a_silently_dead_socket_swallowed(core):
    a, b = core.connect(), core.connect()
    login = a.login("room1", "alice")
    b.login("room1", "bob")
    core.advance(1)
    seen = max(seqs(a))
    # alice's socket is dead but the node does not know yet: these events go into the void
    b.publish("s1", "")
    b.publish("s2", "")
    lost = [m for m in a.events() if m["seq"] > seen]
    assert len(lost) == 2
    a2 = core.connect()
    a2.resume(login["session_id"], login["resume_token"], last_event_seq=seen)  # takeover
    assert a2.events() == lost


def test_resume_without_a_seq_replays_what_was_kept_while_detached(core):
    a, b = core.connect(), core.connect()
    login = a.login("room1", "alice")
    b.login("room1", "bob")
    core.advance(1)
    core.drop(a)
    b.publish("s1", "")
    a2 = core.connect()
    a2.resume(login["session_id"], login["resume_token"])
    assert [m["event"] for m in a2.events()] == ["room_stream_update"]


def test_ack_trims_and_a_resume_before_the_floor_fails(core):
    a, b = core.connect(), core.connect()
    login = a.login("room1", "alice")
    b.login("room1", "bob")
    b.publish("s1", "")
    b.publish("s2", "")
    a.heartbeat(ack=2)
    a2 = core.connect()
    fails(ErrorCode.RECONNECT_FAILED, a2.resume, login["session_id"], login["resume_token"], last_event_seq=1)
    fails(ErrorCode.INVALID_ARGUMENT, a2.resume, login["session_id"], login["resume_token"], last_event_seq=99)
    a2.resume(login["session_id"], login["resume_token"], last_event_seq=2)
    assert a2.events() == []


def test_replay_buffer_is_bounded(core, monkeypatch):
    monkeypatch.setattr(service_module, "REPLAY_MAX", 3)
    a, b = core.connect(), core.connect()
    login = a.login("room1", "alice")
    b.login("room1", "bob")
    for i in range(5):
        b.publish(f"s{i}", "")
    a2 = core.connect()
    fails(ErrorCode.RECONNECT_FAILED, a2.resume, login["session_id"], login["resume_token"], last_event_seq=1)
    a2.resume(login["session_id"], login["resume_token"], last_event_seq=2)
    assert [m["seq"] for m in a2.events()] == [3, 4, 5]
