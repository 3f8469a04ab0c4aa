"""The room service: DESIGN.md §1 as a sans-IO core.

Rules (the whole contract; tests/room/ has one test file per group):

- A *connection* is a transport (one WebSocket). A *session* is a logged-in user in one room; it
  belongs to at most one connection and outlives it for `reconnect_grace` seconds (detached).
- Inputs are method calls carrying `now` (monotonic seconds) and, where tokens are checked,
  `wallclock` (unix seconds). Outputs are drained with `next_output()`: `Send(conn_id, message)`,
  `Close(conn_id, code, message)` and `MediaChange` (for the media plane). `next_timer()` says when `handle_timer(now)` is due.
- Request methods return the reply's result dict or raise SfuError; every output they cause is
  queued after it, so the IO layer sends the reply first and then drains.
- Timers per connection: AUTH (not logged in by then -> Close AUTH_TIMEOUT). Per session:
  LIVE (nothing heard for session_timeout -> detach, Close; not for a session logged in with
  heartbeats=False, which no client keeps alive: the HTTP API's), GRACE (detached for reconnect_grace
  -> removed, others see DELETE), WARN (token expires in token_warning -> room_token_will_expire),
  EXPIRE (token expired -> KICK_OUT 1002056). Per room: FLUSH (batched user events go out).
- A node that stood still (its event loop stalled: swapped out, stopped, a long GC) handles the
  timers that fell due meanwhile late, before it reads what its clients sent meanwhile. An AUTH,
  LIVE or GRACE timer handled more than `heartbeat_interval` after its deadline is therefore not
  judged then: it is set again `heartbeat_interval` later, once (`checks_deferred`), so that a
  login, heartbeat or resume waiting in a socket counts first. (A client is never blamed for the
  node's own stall; a dead one is judged one heartbeat interval later.)
- One user_id, one place per AppID: a new login kicks the older session out (KICK_OUT 1002050).
- Users are announced only to sessions with notify=True, batched per room for
  `user_event_batch_interval`, never about the session's own user, never repeating what the
  session's login snapshot already showed. Streams are announced at once to every other session
  in the room; the publisher is not told of its own stream.
- Events to a session carry a per-session `seq` and are kept (up to REPLAY_MAX) until the client
  acknowledges them (`ack` in heartbeats). A resume names the last seq the client saw and gets
  every later event again, including those written into a socket that had silently died. A resume
  that needs events no longer kept fails (RECONNECT_FAILED): nothing is lost without saying so.
- AppIDs share nothing: every lookup goes through the App.
"""

from __future__ import annotations

import hmac
import secrets
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sfu import token as tokens
from sfu.config import AppConfig, SessionConfig
from sfu.enums import PlayerState, PublisherState, ResourceMode, RoomStateChangedReason, UpdateType
from sfu.errors import ErrorCode, SfuError
from sfu.room import validate
from sfu.room.model import App, Connection, Room, Session, Stream
from sfu.room.timers import TimerQueue

USER_BATCH_MAX = 500
REPLAY_MAX = 10_000


@dataclass(frozen=True, slots=True)
class Send:
    conn_id: int
    message: dict


@dataclass(frozen=True, slots=True)
class Close:
    conn_id: int
    code: int
    message: str


@dataclass(frozen=True, slots=True)
class MediaChange:
    """For the media plane: a stream ended, or a player stopped (its session_id given)."""

    kind: str  # "stream_ended" | "player_removed"
    app_id: int
    stream_id: str
    session_id: str | None = None


def event(name: str, **fields) -> dict:
    return {"v": 1, "type": "event", "event": name, **fields}


class RoomService:
    def __init__(self, apps: Iterable[AppConfig], config: SessionConfig,
                 *, new_id: Callable[[], str] = lambda: secrets.token_hex(16)) -> None:
        # (hex: an id goes on command lines, e.g. `sfu rtp-stop ID`; a URL-safe one starting with
        # '-' was taken for an option there)
        self.config = config
        self._apps: dict[int, App] = {a.app_id: App(a) for a in apps}
        self._conns: dict[int, Connection] = {}
        self._sessions: dict[str, Session] = {}
        self._timers = TimerQueue()
        self._out: deque[Send | Close | MediaChange] = deque()
        self._next_conn = 1
        self._new_id = new_id
        # plain counters; the metrics module reads them
        self.counters: dict[str, int] = {"logins": 0, "kick_outs": 0, "sessions_timed_out": 0, "resumes": 0,
                                         "checks_deferred": 0}
        self._deferred: set[tuple[str, object]] = set()  # timers set again after a stall (rules), once
        self.login_failures: dict[int, int] = {}

    # ----- outputs and time -------------------------------------------------------------

    def next_output(self) -> Send | Close | MediaChange | None:
        return self._out.popleft() if self._out else None

    def next_timer(self) -> float | None:
        return self._timers.next_deadline()

    def handle_timer(self, now: float) -> None:
        stall = self.config.heartbeat_interval
        pruned = False
        while (entry := self._timers.pop_due_entry(now)) is not None:
            key, deadline = entry
            kind, ident = key
            if kind in ("auth", "live", "grace"):
                if now - deadline > stall and key not in self._deferred:
                    if not pruned:  # forget those whose timers went since (once a call: a stall defers many)
                        self._deferred = {k for k in self._deferred if k in self._timers}
                        pruned = True
                    self._deferred.add(key)  # the node stalled: hear the client first (rules)
                    self._timers.set(key, now + stall)
                    self.counters["checks_deferred"] += 1
                    continue
                self._deferred.discard(key)
            if kind == "auth":
                conn = self._conns.get(ident)
                if conn is not None and conn.session is None:
                    self._close(ident, ErrorCode.AUTH_TIMEOUT, "not logged in within auth_timeout")
            elif kind == "flush":
                room = self._room_by_key(ident)
                if room is not None:
                    self._flush_users(room)
                continue
            else:
                session = self._sessions.get(ident)
                if session is None:
                    continue
                if kind == "live":
                    self._check_live(session, now)
                elif kind == "grace":
                    if session.conn_id is None:
                        self.counters["sessions_timed_out"] += 1
                        self._remove_session(session, now)
                elif kind == "warn":
                    remaining = max(0, round(session.token_expire_at - now))
                    self._emit(session, event("room_token_will_expire", room_id=session.room.room_id,
                                              remaining_seconds=remaining))
                elif kind == "expire":
                    self._kick(session, ErrorCode.TOKEN_EXPIRED_KICK_OUT, now)

    # ----- connections --------------------------------------------------------------------

    def connect(self, now: float) -> int:
        conn_id = self._next_conn
        self._next_conn += 1
        self._conns[conn_id] = Connection(conn_id)
        self._timers.set(("auth", conn_id), now + self.config.auth_timeout)
        return conn_id

    def disconnect(self, conn_id: int, now: float) -> None:
        """The transport closed (or the IO layer closed it). A session on it is detached."""
        conn = self._conns.pop(conn_id, None)
        self._timers.cancel(("auth", conn_id))
        if conn is None or conn.session is None:
            return
        self._detach(conn.session, now)

    def _detach(self, session: Session, now: float) -> None:
        session.conn_id = None
        session.detached_at_seq = session.event_seq
        self._timers.cancel(("live", session.session_id))
        self._timers.set(("grace", session.session_id), now + self.config.reconnect_grace)

    def _close(self, conn_id: int, code: int, message: str) -> None:
        """Close a connection; its session (if any) stays for the caller to detach or remove."""
        conn = self._conns.pop(conn_id, None)
        self._timers.cancel(("auth", conn_id))
        if conn is not None:
            self._out.append(Close(conn_id, int(code), message))

    def _conn(self, conn_id: int) -> Connection:
        try:
            return self._conns[conn_id]
        except KeyError:
            raise SfuError(ErrorCode.NOT_CONNECTED, f"connection {conn_id} is not open") from None

    def _session(self, conn_id: int, code: ErrorCode = ErrorCode.NOT_LOGGED_IN) -> Session:
        conn = self._conn(conn_id)
        if conn.session is None:
            raise SfuError(code)
        return conn.session

    def touch(self, conn_id: int, now: float) -> None:
        """Anything heard on a connection is a sign of life for its session."""
        conn = self._conns.get(conn_id)
        if conn is not None and conn.session is not None:
            conn.session.last_seen = now

    def _check_live(self, session: Session, now: float) -> None:
        if session.conn_id is None or not session.heartbeats:
            return
        due = session.last_seen + self.config.session_timeout
        if now < due:
            self._timers.set(("live", session.session_id), due)
            return
        conn_id = session.conn_id
        self._close(conn_id, ErrorCode.CONNECTION_LOST, "no heartbeat within session_timeout")
        self._detach(session, now)

    # ----- login / logout / resume ----------------------------------------------------------

    def login(self, conn_id: int, *, app_id: object, room_id: object, user_id: object, user_name: object,
              token: object, notify: bool, now: float, wallclock: float, heartbeats: bool = True) -> dict:
        try:
            return self._login(conn_id, app_id, room_id, user_id, user_name, token, notify, now, wallclock,
                               heartbeats)
        except SfuError as e:
            self.login_failures[int(e.code)] = self.login_failures.get(int(e.code), 0) + 1
            raise

    def _login(self, conn_id, app_id, room_id, user_id, user_name, token, notify, now, wallclock,
               heartbeats) -> dict:
        conn = self._conn(conn_id)
        if conn.session is not None:
            if conn.session.room.room_id == room_id and conn.session.app.config.app_id == app_id:
                raise SfuError(ErrorCode.ALREADY_LOGGED_IN, f"already logged in to room {room_id!r}")
            raise SfuError(ErrorCode.ROOM_COUNT_EXCEED,
                           f"already logged in to room {conn.session.room.room_id!r}; log out first")
        app_id = validate.app_id(app_id)
        app = self._apps.get(app_id)
        if app is None:
            raise SfuError(ErrorCode.APP_ID_INVALID, f"app_id {app_id} is not configured on this node")
        room_id = validate.room_id(room_id)
        user_id = validate.user_id(user_id)
        user_name = validate.user_name(user_name)
        if not isinstance(token, str):
            raise SfuError(ErrorCode.TOKEN_INVALID, "token must be a string", {"reason": "malformed"})
        try:
            claims = tokens.verify_token(token, secret=app.config.secret, app_id=app_id, user_id=user_id,
                                         room_id=room_id, now=wallclock)
        except tokens.TokenError as e:
            raise SfuError(ErrorCode.TOKEN_INVALID, str(e), {"reason": e.reason}) from None

        previous = app.users.get(user_id)
        room = app.rooms.get(room_id)
        if room is None:
            if len(app.rooms) >= app.config.max_rooms:
                raise SfuError(ErrorCode.APP_ROOM_LIMIT, f"app has {len(app.rooms)} rooms, the max_rooms limit")
        else:
            present = len(room.sessions) - (1 if previous is not None and previous.room is room else 0)
            if present >= app.config.max_users_per_room:
                raise SfuError(ErrorCode.ROOM_USER_LIMIT,
                               f"room {room_id!r} has {present} users, the max_users_per_room limit")
        if previous is not None:
            self._kick(previous, ErrorCode.KICKED_OUT_DUPLICATE_LOGIN, now)
            room = app.rooms.get(room_id)  # the kick may have emptied (and deleted) it
        if room is None:
            room = app.rooms[room_id] = Room(app, room_id)

        room.seq += 1
        session = Session(
            session_id=self._new_id(), resume_token=self._new_id(), app=app, room=room, user_id=user_id,
            user_name=user_name, notify=bool(notify), join_seq=room.seq, token_expire_wall=claims.expire,
            token_expire_at=now + (claims.expire - wallclock), claims=claims, conn_id=conn_id, last_seen=now,
            heartbeats=bool(heartbeats),
        )
        self._sessions[session.session_id] = session
        app.users[user_id] = session
        conn.session = session
        self._timers.cancel(("auth", conn_id))
        self._queue_user(room, UpdateType.ADD, session.user_wire(), now)
        room.sessions[user_id] = session
        self._arm_session_timers(session, now)
        self.counters["logins"] += 1

        if session.notify:
            others = [s.user_wire() for s in room.sessions.values() if s is not session]
            for i in range(0, len(others), USER_BATCH_MAX):
                self._emit(session, event("room_user_update", room_id=room_id, update_type=int(UpdateType.ADD),
                                          users=others[i:i + USER_BATCH_MAX]))
        if room.streams:
            self._emit(session, event("room_stream_update", room_id=room_id, update_type=int(UpdateType.ADD),
                                      streams=[s.wire() for s in room.streams.values()], extended_data={}))
        return {
            "session_id": session.session_id,
            "resume_token": session.resume_token,
            "heartbeat_interval": self.config.heartbeat_interval,
            "session_timeout": self.config.session_timeout,
            "reconnect_grace": self.config.reconnect_grace,
            "token_expire": claims.expire,
        }

    def _arm_session_timers(self, session: Session, now: float) -> None:
        sid = session.session_id
        if session.heartbeats:
            self._timers.set(("live", sid), now + self.config.session_timeout)
        self._timers.set(("warn", sid), max(now, session.token_expire_at - self.config.token_warning))
        self._timers.set(("expire", sid), session.token_expire_at)

    def logout(self, conn_id: int, room_id: object, now: float) -> dict:
        session = self._session(conn_id)
        if room_id != session.room.room_id:
            raise SfuError(ErrorCode.NOT_IN_ROOM, f"not logged in to room {room_id!r}")
        self._remove_session(session, now)
        self._timers.set(("auth", conn_id), now + self.config.auth_timeout)
        return {}

    def resume(self, conn_id: int, session_id: object, resume_token: object, now: float,
               last_event_seq: int | None = None) -> dict:
        conn = self._conn(conn_id)
        if conn.session is not None:
            raise SfuError(ErrorCode.ALREADY_LOGGED_IN, "this connection already has a session")
        session = self._sessions.get(session_id) if isinstance(session_id, str) else None
        if session is None or not isinstance(resume_token, str) or not hmac.compare_digest(
                session.resume_token.encode(), resume_token.encode()):
            raise SfuError(ErrorCode.RECONNECT_FAILED, "no such session to resume (it ended or the grace window ran out)")
        start = session.detached_at_seq if session.conn_id is None else session.event_seq
        if last_event_seq is not None:
            if not 0 <= last_event_seq <= session.event_seq:
                raise SfuError(ErrorCode.INVALID_ARGUMENT,
                               f"last_event_seq {last_event_seq} is outside 0..{session.event_seq}")
            start = last_event_seq
        if start < session.replay_floor:
            raise SfuError(ErrorCode.RECONNECT_FAILED,
                           f"events after {start} are no longer kept (oldest kept: {session.replay_floor + 1})")
        if session.conn_id is not None:  # takeover: the old socket is half-dead
            old = self._conns.get(session.conn_id)
            if old is not None:
                old.session = None
            self._close(session.conn_id, ErrorCode.CONNECTION_LOST, "session resumed on another connection")
        self._timers.cancel(("grace", session.session_id))
        self._timers.cancel(("auth", conn_id))
        session.conn_id = conn_id
        session.last_seen = now
        conn.session = session
        self._timers.set(("live", session.session_id), now + self.config.session_timeout)
        self.counters["resumes"] += 1
        for seq, message in session.replay:
            if seq > start:
                self._out.append(Send(conn_id, message))
        return {
            "room_id": session.room.room_id,
            "heartbeat_interval": self.config.heartbeat_interval,
            "session_timeout": self.config.session_timeout,
            "reconnect_grace": self.config.reconnect_grace,
            "token_expire": session.token_expire_wall,
        }

    def heartbeat(self, conn_id: int, now: float, ack: int | None = None) -> dict:
        """A sign of life; `ack` is the last event seq the client has seen (its replay can be trimmed)."""
        session = self._session(conn_id)
        session.last_seen = now
        if ack is not None:
            replay = session.replay
            while replay and replay[0][0] <= ack:
                session.replay_floor = replay.popleft()[0]
        return {}

    def renew_token(self, conn_id: int, room_id: object, token: object, now: float, wallclock: float) -> dict:
        session = self._session(conn_id)
        if room_id != session.room.room_id:
            raise SfuError(ErrorCode.NOT_IN_ROOM, f"not logged in to room {room_id!r}")
        if not isinstance(token, str):
            raise SfuError(ErrorCode.TOKEN_INVALID, "token must be a string", {"reason": "malformed"})
        try:
            claims = tokens.verify_token(token, secret=session.app.config.secret, app_id=session.app.config.app_id,
                                         user_id=session.user_id, room_id=session.room.room_id, now=wallclock)
        except tokens.TokenError as e:
            raise SfuError(ErrorCode.TOKEN_INVALID, str(e), {"reason": e.reason}) from None
        session.claims = claims
        session.token_expire_wall = claims.expire
        session.token_expire_at = now + (claims.expire - wallclock)
        self._arm_session_timers(session, now)
        session.last_seen = now
        return {"token_expire": claims.expire}

    # ----- publish / play --------------------------------------------------------------------

    def publish(self, conn_id: int, stream_id: object, extra_info: object, now: float) -> dict:
        session = self._session(conn_id, ErrorCode.PUBLISH_NOT_LOGGED_IN)
        stream_id = validate.stream_id(stream_id)
        extra_info = validate.extra_info(extra_info)
        claims = session.claims
        if not claims.allows_publish(stream_id):
            raise SfuError(ErrorCode.PUBLISH_PRIVILEGE_DENIED,
                           f"the token does not allow publishing stream {stream_id!r}")
        app, room = session.app, session.room
        existing = app.streams.get(stream_id)
        if existing is not None:
            if existing.session is session:
                return {"stream_id": stream_id, "state": int(PublisherState.PUBLISHING)}
            raise SfuError(ErrorCode.STREAM_ID_IN_USE, f"stream {stream_id!r} is already being published")
        if len(room.streams) >= app.config.max_streams_per_room:
            raise SfuError(ErrorCode.ROOM_STREAM_LIMIT,
                           f"room has {len(room.streams)} streams, the max_streams_per_room limit")
        stream = Stream(stream_id, room, session, extra_info)
        app.streams[stream_id] = stream
        room.streams[stream_id] = stream
        session.publishes[stream_id] = stream
        self._room_broadcast(room, event("room_stream_update", room_id=room.room_id, update_type=int(UpdateType.ADD),
                                         streams=[stream.wire()], extended_data={}), exclude=session)
        for player in app.plays.get(stream_id, {}).values():
            self._emit(player, event("player_state_update", stream_id=stream_id, state=int(PlayerState.PLAYING),
                                     error_code=0, extended_data={}))
        return {"stream_id": stream_id, "state": int(PublisherState.PUBLISHING)}

    def stop_publish(self, conn_id: int, stream_id: object, now: float) -> dict:
        session = self._session(conn_id, ErrorCode.PUBLISH_NOT_LOGGED_IN)
        stream = session.publishes.get(stream_id) if isinstance(stream_id, str) else None
        if stream is None:
            raise SfuError(ErrorCode.NOT_PUBLISHING, f"this session does not publish stream {stream_id!r}")
        self._unpublish(stream)
        return {}

    def play(self, conn_id: int, stream_id: object, resource_mode: object, now: float) -> dict:
        session = self._session(conn_id, ErrorCode.PLAY_NOT_LOGGED_IN)
        stream_id = validate.stream_id(stream_id, play=True)
        try:
            mode = ResourceMode(resource_mode) if not isinstance(resource_mode, bool) else None
        except ValueError:
            mode = None
        if mode is None or mode is ResourceMode.ONLY_CDN:
            raise SfuError(ErrorCode.RESOURCE_MODE_UNSUPPORTED,
                           f"resource_mode {resource_mode!r} is not served (use 0 DEFAULT, 2 ONLY_L3 or 3 ONLY_RTC)")
        if mode is ResourceMode.DEFAULT:
            mode = ResourceMode.ONLY_L3
        app = session.app
        players = app.plays.setdefault(stream_id, {})
        if session.session_id not in players and len(players) >= app.config.max_players_per_stream:
            if not players:
                del app.plays[stream_id]
            raise SfuError(ErrorCode.STREAM_PLAYER_LIMIT,
                           f"stream {stream_id!r} has {len(players)} players, the max_players_per_stream limit")
        players[session.session_id] = session
        session.plays[stream_id] = mode
        live = stream_id in app.streams
        state = PlayerState.PLAYING if live else PlayerState.PLAY_REQUESTING
        return {"stream_id": stream_id, "state": int(state), "resource_mode": int(mode)}

    def stop_play(self, conn_id: int, stream_id: object, now: float) -> dict:
        session = self._session(conn_id, ErrorCode.PLAY_NOT_LOGGED_IN)
        if not isinstance(stream_id, str) or stream_id not in session.plays:
            raise SfuError(ErrorCode.NOT_PLAYING, f"this session does not play stream {stream_id!r}")
        self._drop_play(session, stream_id)
        return {}

    # ----- queries (for the IO layer, metrics and tests) ---------------------------------

    def room_users(self, app_id: int, room_id: str) -> list[str]:
        room = self._apps[app_id].rooms.get(room_id)
        return list(room.sessions) if room else []

    def room_streams(self, app_id: int, room_id: str) -> list[str]:
        room = self._apps[app_id].rooms.get(room_id)
        return list(room.streams) if room else []

    def gauges(self) -> dict[int, dict[str, int]]:
        """Per AppID: rooms, users, streams, publishers (sessions publishing a stream), players by
        mode, sessions detached."""
        out = {}
        rtc = ResourceMode.ONLY_RTC
        for app_id, app in self._apps.items():
            plays = publishers = detached = players_rtc = 0
            for s in app.users.values():  # (one pass: a scrape takes this at every user)
                if s.plays:
                    plays += len(s.plays)
                    players_rtc += sum(1 for mode in s.plays.values() if mode is rtc)
                publishers += bool(s.publishes)
                detached += s.conn_id is None
            out[app_id] = {
                "rooms": len(app.rooms),
                "users": len(app.users),
                "streams": len(app.streams),
                "publishers": publishers,
                "players_rtc": players_rtc,
                "players_l3": plays - players_rtc,
                "detached": detached,
            }
        return out

    def stream_players(self) -> dict[tuple[int, str], dict[str, int]]:
        """Per (AppID, stream_id) with players: players by mode ("rtc", "l3")."""
        out = {}
        for app_id, app in self._apps.items():
            for stream_id, sessions in app.plays.items():
                players = out[(app_id, stream_id)] = {"rtc": 0, "l3": 0}
                for s in sessions.values():
                    players["rtc" if s.plays.get(stream_id) is ResourceMode.ONLY_RTC else "l3"] += 1
        return out

    def session_id_of(self, conn_id: int) -> str | None:
        conn = self._conns.get(conn_id)
        return conn.session.session_id if conn and conn.session else None

    def app_id_of(self, conn_id: int) -> int | None:
        conn = self._conns.get(conn_id)
        return conn.session.app.config.app_id if conn and conn.session else None

    def session_of(self, conn_id: int) -> Session | None:
        conn = self._conns.get(conn_id)
        return conn.session if conn else None

    def shutdown(self, now: float) -> None:
        """Tell every connection the node stops, and close it. Sessions are dropped silently."""
        for conn_id in list(self._conns):
            self._out.append(Send(conn_id, event("server_shutdown")))
            self._close(conn_id, ErrorCode.SERVER_SHUTTING_DOWN, "the node is shutting down")

    # ----- internals -----------------------------------------------------------------------

    def _emit(self, session: Session, message: dict) -> None:
        session.event_seq += 1
        message = {**message, "seq": session.event_seq}
        replay = session.replay
        replay.append((session.event_seq, message))
        if len(replay) > REPLAY_MAX:
            session.replay_floor = replay.popleft()[0]
        if session.conn_id is not None:
            self._out.append(Send(session.conn_id, message))

    def _room_broadcast(self, room: Room, message: dict, *, exclude: Session | None) -> None:
        for s in room.sessions.values():
            if s is not exclude:
                self._emit(s, message)

    def _room_key(self, room: Room) -> tuple[int, str]:
        return (room.app.config.app_id, room.room_id)

    def _room_by_key(self, key: tuple[int, str]) -> Room | None:
        app = self._apps.get(key[0])
        return app.rooms.get(key[1]) if app else None

    def _queue_user(self, room: Room, update: UpdateType, user: dict, now: float) -> None:
        room.seq += 1
        room.pending_users.append((room.seq, int(update), user))
        key = ("flush", self._room_key(room))
        if key not in self._timers:
            self._timers.set(key, now + self.config.user_event_batch_interval)

    def _flush_users(self, room: Room) -> None:
        pending, room.pending_users = room.pending_users, []
        if not pending:
            return
        for s in room.sessions.values():
            if not s.notify:
                continue
            runs: list[tuple[int, list[dict]]] = []
            for seq, update, user in pending:
                if seq <= s.join_seq or user["user_id"] == s.user_id:
                    continue
                if runs and runs[-1][0] == update and len(runs[-1][1]) < USER_BATCH_MAX:
                    runs[-1][1].append(user)
                else:
                    runs.append((update, [user]))
            for update, users in runs:
                self._emit(s, event("room_user_update", room_id=room.room_id, update_type=update, users=users))

    def _unpublish(self, stream: Stream) -> None:
        app, room, session = stream.room.app, stream.room, stream.session
        del app.streams[stream.stream_id]
        del room.streams[stream.stream_id]
        del session.publishes[stream.stream_id]
        self._room_broadcast(room, event("room_stream_update", room_id=room.room_id, update_type=int(UpdateType.DELETE),
                                         streams=[stream.wire()], extended_data={}), exclude=session)
        for player in app.plays.get(stream.stream_id, {}).values():
            self._emit(player, event("player_state_update", stream_id=stream.stream_id,
                                     state=int(PlayerState.PLAY_REQUESTING), error_code=0, extended_data={}))
        self._out.append(MediaChange("stream_ended", app.config.app_id, stream.stream_id))

    def _drop_play(self, session: Session, stream_id: str) -> None:
        del session.plays[stream_id]
        self._out.append(MediaChange("player_removed", session.app.config.app_id, stream_id, session.session_id))
        players = session.app.plays.get(stream_id)
        if players is not None:
            players.pop(session.session_id, None)
            if not players:
                del session.app.plays[stream_id]

    def _kick(self, session: Session, code: ErrorCode, now: float) -> None:
        self.counters["kick_outs"] += 1
        if session.conn_id is not None:
            conn_id = session.conn_id
            self._out.append(Send(conn_id, event("room_state_changed", room_id=session.room.room_id,
                                                 reason=int(RoomStateChangedReason.KICK_OUT),
                                                 error_code=int(code), extended_data={})))
            conn = self._conns.get(conn_id)
            if conn is not None:
                conn.session = None
            self._close(conn_id, code, "kicked out")
        self._remove_session(session, now)

    def _remove_session(self, session: Session, now: float) -> None:
        """The session ends: its streams end, its plays stop, the others see its user leave."""
        for stream in list(session.publishes.values()):
            self._unpublish(stream)
        for stream_id in list(session.plays):
            self._drop_play(session, stream_id)
        app, room = session.app, session.room
        if session.conn_id is not None:
            conn = self._conns.get(session.conn_id)
            if conn is not None and conn.session is session:
                conn.session = None
        session.conn_id = None
        sid = session.session_id
        for kind in ("live", "grace", "warn", "expire"):
            self._timers.cancel((kind, sid))
        del self._sessions[sid]
        if app.users.get(session.user_id) is session:
            del app.users[session.user_id]
        if room.sessions.get(session.user_id) is session:
            del room.sessions[session.user_id]
        if room.sessions:
            self._queue_user(room, UpdateType.DELETE, session.user_wire(), now)
        else:
            del app.rooms[room.room_id]
            self._timers.cancel(("flush", self._room_key(room)))
