"""The room service's state: apps, rooms, sessions, streams. Plain data, no behaviour."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from sfu.config import AppConfig
from sfu.enums import ResourceMode
from sfu.token import TokenClaims


@dataclass(slots=True)
class Stream:
    stream_id: str
    room: Room
    session: Session
    extra_info: str

    def wire(self) -> dict:
        return {"stream_id": self.stream_id, "user": self.session.user_wire(), "extra_info": self.extra_info}


@dataclass(slots=True)
class Session:
    """One logged-in client: a user in a room. Survives its connection for the grace window."""

    session_id: str
    resume_token: str
    app: App
    room: Room
    user_id: str
    user_name: str
    notify: bool
    join_seq: int
    token_expire_wall: int
    token_expire_at: float  # monotonic
    claims: TokenClaims
    conn_id: int | None = None
    last_seen: float = 0.0
    # False: no client heartbeats it (the HTTP API's sessions: their RTP, or an explicit end, says
    # when they are over), so no LIVE timeout; a stall of the node itself must not end it
    heartbeats: bool = True
    publishes: dict[str, Stream] = field(default_factory=dict)
    plays: dict[str, ResourceMode] = field(default_factory=dict)
    # every event sent to the session, numbered, kept until the client acknowledges it, so that a
    # resume replays what a dead socket swallowed: (seq, message)
    replay: deque[tuple[int, dict]] = field(default_factory=deque)
    event_seq: int = 0
    replay_floor: int = 0  # events up to here were dropped from the replay buffer
    detached_at_seq: int = 0

    def user_wire(self) -> dict:
        return {"user_id": self.user_id, "user_name": self.user_name}


@dataclass(slots=True)
class Room:
    app: App
    room_id: str
    sessions: dict[str, Session] = field(default_factory=dict)  # by user_id, in join order
    streams: dict[str, Stream] = field(default_factory=dict)
    seq: int = 0
    # user events waiting for the next batch flush: (seq, update_type, user_wire)
    pending_users: list[tuple[int, int, dict]] = field(default_factory=list)


@dataclass(slots=True)
class App:
    config: AppConfig
    rooms: dict[str, Room] = field(default_factory=dict)
    users: dict[str, Session] = field(default_factory=dict)  # one place per user_id
    streams: dict[str, Stream] = field(default_factory=dict)  # live streams by stream_id
    plays: dict[str, dict[str, Session]] = field(default_factory=dict)  # stream_id -> session_id -> session


@dataclass(slots=True)
class Connection:
    conn_id: int
    session: Session | None = None
