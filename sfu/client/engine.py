"""Engine: the seeds' ZegoExpressEngine flow in Python naming.

Local state: the room (None = logged out), publishers by channel, players by stream_id. Every
change is reported through the EventHandler, in order, by one Dispatcher task. Each call sends one
request (docs/protocol.md) and awaits its reply; a failure emits the failed state and raises
EngineError. One login uses one Connection; logout, kick-out and a failed reconnection end it.

Media (sfu.client.media): a publish reply's `media` starts a MediaPublisher (RTP to the node's
track ports); a play reply's `media` starts a MediaPlayer. With media, a player reports PLAYING
when the node says the stream is live *and* a frame has arrived since; without media in the reply
(a node without a media plane) PLAYING follows the node alone. Media stops with
stop_publishing_stream / stop_playing_stream, and when the session ends (logout, kick-out, failed
reconnection, destroy); it keeps flowing while signalling reconnects.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING

import aiohttp

from sfu.enums import PlayerState, PublisherState, RoomStateChangedReason, UpdateType
from sfu.errors import ErrorCode

from .connection import Connection, State
from .dispatcher import Dispatcher
from .error import EngineError
from .handler import EventHandler
from .types import EngineProfile, PlayerConfig, PlayerStats, PublisherConfig, PublisherStats, RoomConfig, Stream, User

if TYPE_CHECKING:  # imported when first used: PyAV and numpy load only for media
    from .media.player import MediaPlayer
    from .media.publisher import MediaPublisher

log = logging.getLogger("sfu.client")

R = RoomStateChangedReason


@dataclass(eq=False)
class _Publisher:
    stream_id: str
    state: PublisherState
    media: MediaPublisher | None = None


@dataclass(eq=False)
class _Player:
    state: PlayerState
    media: MediaPlayer | None = None
    with_media: bool = False  # the play reply carried `media`: PLAYING waits for a frame
    live: bool = False  # the node says the stream is live


class Engine:
    """Create with `await Engine.create(profile, handler)`; release with `await Engine.destroy(engine)`."""

    def __init__(self, profile: EngineProfile, handler: EventHandler | None = None):
        self._profile = profile
        self._dispatcher = Dispatcher(handler if handler is not None else EventHandler())
        self._http = aiohttp.ClientSession()
        self._listener = SimpleNamespace(on_event=self._on_event, on_reconnecting=self._on_reconnecting,
                                         on_reconnected=self._on_reconnected,
                                         on_reconnect_failed=self._on_reconnect_failed)
        self._conn: Connection | None = None
        self._lock = asyncio.Lock()  # login / logout / destroy, one at a time
        self._destroyed = False
        self._room_id: str | None = None
        self._user: User | None = None
        self._publishers: dict[int, _Publisher] = {}
        self._players: dict[str, _Player] = {}
        self._closing: set[asyncio.Task] = set()  # media still releasing its worker thread; destroy awaits them
        self._player_stats: dict[str, PlayerStats] = {}  # the last stats of stopped players

    # -- lifecycle -----------------------------------------------------------------------------

    @classmethod
    async def create(cls, profile: EngineProfile, handler: EventHandler | None = None) -> Engine:
        app_id = profile.app_id
        if isinstance(app_id, bool) or not isinstance(app_id, int) or not 0 < app_id <= 0xFFFFFFFF:
            raise EngineError(ErrorCode.APP_ID_INVALID,
                              message=f"app_id must be an unsigned 32-bit integer, got {app_id!r}")
        if not isinstance(profile.server, str) or not profile.server.startswith(("ws://", "wss://")):
            raise EngineError(ErrorCode.INVALID_ARGUMENT,
                              message=f"server must be a ws:// or wss:// URL, got {profile.server!r}")
        return cls(profile, handler)

    @staticmethod
    async def destroy(engine: Engine) -> None:
        """Log out if needed, close the connection, deliver the last callbacks, stop. Idempotent."""
        if engine._destroyed:
            return
        engine._destroyed = True
        async with engine._lock:
            conn = engine._conn
            if engine._room_id is not None and conn is not None and conn.state is State.OPEN:
                try:
                    await engine._logout(None)
                except EngineError as e:
                    log.info("logout while destroying the engine failed: %s", e)
            if engine._room_id is not None:
                engine._end_session(R.LOGOUT, 0)
            if conn is not None:
                await conn.close()
            await engine._http.close()
            await asyncio.gather(*engine._closing, return_exceptions=True)
        await engine._dispatcher.close()

    # -- what tests and tools may read ---------------------------------------------------------

    @property
    def profile(self) -> EngineProfile:
        return self._profile

    @property
    def connection(self) -> Connection | None:
        """The current login's connection (`connection.abort_transport()` simulates a network drop)."""
        return self._conn

    @property
    def session_id(self) -> str | None:
        return self._conn.session_id if self._conn is not None and self._room_id is not None else None

    @property
    def room_id(self) -> str | None:
        return self._room_id

    @property
    def user(self) -> User | None:
        return self._user if self._room_id is not None else None

    @property
    def is_logged_in(self) -> bool:
        return self._room_id is not None

    # -- room ----------------------------------------------------------------------------------

    async def login_room(self, room_id: str, user: User, config: RoomConfig | None = None) -> None:
        self._check_alive()
        config = config or RoomConfig()
        async with self._lock:
            self._check_alive()
            self._emit_room(room_id, R.LOGINING, 0)
            fresh = self._room_id is None
            conn = self._conn
            if fresh:
                if conn is not None:
                    await conn.close()
                conn = self._conn = Connection(self._http, self._profile.server, self._listener,
                                               self._profile.request_timeout)

            def logined(result: dict) -> None:
                conn.attach_session(result)
                self._room_id, self._user = room_id, user
                self._emit_room(room_id, R.LOGINED, 0)

            fields = {"app_id": self._profile.app_id, "room_id": room_id, "user": user.to_wire(),
                      "token": config.token, "is_user_status_notify": bool(config.is_user_status_notify)}
            try:
                if fresh:
                    await conn.open()
                await conn.request("login", fields, logined if fresh else None)
            except EngineError as e:
                self._emit_room(room_id, R.LOGIN_FAILED, e.code, e.extended_data)
                if fresh and self._room_id is None:
                    await conn.close()
                raise

    async def logout_room(self, room_id: str | None = None) -> None:
        """Log out of `room_id` (default: the current room); publishing and playing stop."""
        self._check_alive()
        async with self._lock:
            await self._logout(room_id)

    async def renew_token(self, room_id: str, token: str) -> None:
        self._check_alive()
        if self._room_id is None or self._conn is None:
            raise EngineError(ErrorCode.NOT_LOGGED_IN, message="renew_token needs a logged-in room")
        await self._conn.request("renew_token", {"room_id": room_id, "token": token})

    async def _logout(self, room_id: str | None) -> None:
        if self._room_id is None or self._conn is None:
            return
        conn, room = self._conn, room_id if room_id is not None else self._room_id
        try:
            await conn.request("logout", {"room_id": room}, lambda result: self._end_session(R.LOGOUT, 0))
        except EngineError as e:
            if self._room_id is None:  # the session ended meanwhile (reconnect failed, kicked out)
                return
            self._emit_room(room, R.LOGOUT_FAILED, e.code, e.extended_data)
            raise
        await conn.close()

    # -- publish -------------------------------------------------------------------------------

    async def start_publishing_stream(self, stream_id: str, extra_info: str = "", channel: int = 0,
                                      config: PublisherConfig | None = None) -> None:
        """Publish `stream_id`; once the node answers, send media as `config` says (default: a VP8 test
        pattern and an Opus tone, see PublisherConfig)."""
        self._check_alive()
        current = self._publishers.get(channel)
        if current is not None:
            if current.stream_id == stream_id:
                return
            raise EngineError(ErrorCode.INVALID_ARGUMENT,
                              message=f"channel {channel} already publishes {current.stream_id!r}; stop it first")
        from .media.publisher import MediaPublisher

        try:
            media = MediaPublisher(config or PublisherConfig())
        except ValueError as e:
            raise EngineError(ErrorCode.INVALID_ARGUMENT, message=f"publisher config: {e}") from None
        self._emit_publisher(stream_id, PublisherState.PUBLISH_REQUESTING, 0)
        if self._room_id is None or self._conn is None:
            self._close_media(media)
            error = EngineError(ErrorCode.PUBLISH_NOT_LOGGED_IN)
            self._emit_publisher(stream_id, PublisherState.NO_PUBLISH, error.code)
            raise error
        pub = self._publishers[channel] = _Publisher(stream_id, PublisherState.PUBLISH_REQUESTING, media)
        reply: dict = {}

        def published(result: dict) -> None:
            reply.update(result)
            if self._publishers.get(channel) is pub:
                pub.state = _enum(PublisherState, result.get("state"), PublisherState.PUBLISHING)
                self._emit_publisher(stream_id, pub.state, 0)

        try:
            await self._conn.request("publish", {"stream_id": stream_id, "extra_info": extra_info,
                                                 "tracks": media.tracks_request()}, published)
        except EngineError as e:
            self._close_media(media)
            if self._publishers.get(channel) is pub:
                del self._publishers[channel]
                self._emit_publisher(stream_id, PublisherState.NO_PUBLISH, e.code, e.extended_data)
            raise
        if self._publishers.get(channel) is not pub or not isinstance(reply.get("media"), dict):
            self._close_media(media)  # stopped meanwhile, or a node without a media plane
            return
        try:
            await media.start(reply["media"], self._profile.server)
        except (OSError, KeyError, TypeError, ValueError) as e:
            log.warning("cannot send media for %r: %r", stream_id, e)
            self._close_media(media)

    async def stop_publishing_stream(self, channel: int = 0) -> None:
        self._check_alive()
        pub = self._publishers.pop(channel, None)
        if pub is None:
            return
        if pub.media is not None:
            await pub.media.wait_closed()
        if self._conn is None:
            return
        try:
            await self._stop("stop_publish", pub.stream_id, ErrorCode.NOT_PUBLISHING)
        except EngineError as e:
            self._emit_publisher(pub.stream_id, PublisherState.NO_PUBLISH, e.code, e.extended_data)
            raise
        self._emit_publisher(pub.stream_id, PublisherState.NO_PUBLISH, 0)

    # -- play ----------------------------------------------------------------------------------

    async def start_playing_stream(self, stream_id: str, config: PlayerConfig | None = None) -> None:
        """Play `stream_id`; once the node answers, receive its media (see PlayerConfig, get_player_stats)."""
        self._check_alive()
        config = config or PlayerConfig()
        mode = config.resource_mode
        if stream_id in self._players:
            return
        started_at = asyncio.get_running_loop().time()
        self._emit_player(stream_id, PlayerState.PLAY_REQUESTING, 0)
        if self._room_id is None or self._conn is None:
            error = EngineError(ErrorCode.PLAY_NOT_LOGGED_IN)
            self._emit_player(stream_id, PlayerState.NO_PLAY, error.code)
            raise error
        player = self._players[stream_id] = _Player(PlayerState.PLAY_REQUESTING)
        self._player_stats.pop(stream_id, None)
        reply: dict = {}

        def started(result: dict) -> None:
            reply.update(result)
            if self._players.get(stream_id) is not player:
                return
            player.with_media = isinstance(result.get("media"), dict)
            if player.state is PlayerState.PLAY_REQUESTING and result.get("state") == PlayerState.PLAYING:
                if player.with_media:
                    player.live = True  # PLAYING when the first frame arrives
                else:
                    player.state = PlayerState.PLAYING
                    self._emit_player(stream_id, PlayerState.PLAYING, 0)

        try:
            await self._conn.request("play", {"stream_id": stream_id, "resource_mode": int(mode)}, started)
        except EngineError as e:
            if self._players.get(stream_id) is player:
                del self._players[stream_id]
                self._emit_player(stream_id, PlayerState.NO_PLAY, e.code, e.extended_data)
            raise
        if self._players.get(stream_id) is not player or not player.with_media:
            return
        from .media.player import MediaPlayer

        try:
            media = MediaPlayer(reply["media"], self._profile.server, decode=config.decode, started_at=started_at,
                                route=config.media_route, on_frame=config.on_frame)
        except (KeyError, TypeError, ValueError) as e:
            log.warning("play reply for %r has unusable media %r: %r", stream_id, reply.get("media"), e)
            return
        player.media = media
        try:
            await media.start()
        except OSError as e:
            log.warning("cannot receive media for %r: %r", stream_id, e)
            self._close_media(media)
            return
        if player.live and self._players.get(stream_id) is player:
            media.arm(lambda: self._on_first_frame(stream_id, player))

    def get_player_stats(self, stream_id: str) -> PlayerStats:
        """What the player of `stream_id` has received so far; after stop_playing_stream (or the end of
        the session), its last stats until the stream is played again."""
        player = self._players.get(stream_id)
        if player is not None:
            return player.media.stats() if player.media is not None else PlayerStats()
        stats = self._player_stats.get(stream_id)
        if stats is None:
            raise EngineError(ErrorCode.NOT_PLAYING, message=f"not playing {stream_id!r}")
        return stats

    def get_publisher_stats(self, channel: int = 0) -> PublisherStats:
        """What the publisher on `channel` has sent so far."""
        pub = self._publishers.get(channel)
        if pub is None:
            raise EngineError(ErrorCode.NOT_PUBLISHING, message=f"nothing is published on channel {channel}")
        return pub.media.stats() if pub.media is not None else PublisherStats()

    def _on_first_frame(self, stream_id: str, player: _Player) -> None:
        if self._players.get(stream_id) is player and player.live and player.state is not PlayerState.PLAYING:
            player.state = PlayerState.PLAYING
            self._emit_player(stream_id, PlayerState.PLAYING, 0)

    async def stop_playing_stream(self, stream_id: str) -> None:
        self._check_alive()
        player = self._players.pop(stream_id, None)
        if player is None:
            return
        if player.media is not None:
            await player.media.wait_closed()
            self._player_stats[stream_id] = player.media.stats()
        if self._conn is None:
            return
        try:
            await self._stop("stop_play", stream_id, ErrorCode.NOT_PLAYING)
        except EngineError as e:
            self._emit_player(stream_id, PlayerState.NO_PLAY, e.code, e.extended_data)
            raise
        self._emit_player(stream_id, PlayerState.NO_PLAY, 0)

    async def _stop(self, type_: str, stream_id: str, not_active: ErrorCode) -> None:
        """Send a stop; if the connection drops with it in flight, ask again once resumed (the local
        state is already gone, so the application could not repeat it). `not_active` then means done."""
        try:
            await self._conn.request(type_, {"stream_id": stream_id})
        except EngineError as e:
            if e.code != ErrorCode.CONNECTION_LOST or self._conn is None:
                raise
            try:
                await self._conn.request(type_, {"stream_id": stream_id})
            except EngineError as again:
                if again.code != not_active:
                    raise

    # -- node events (run by the connection's reader, in order) ---------------------------------

    def _on_event(self, frame: dict) -> None:
        name = frame.get("event")
        handle = self._EVENTS.get(name)
        if handle is None:
            log.debug("ignoring unknown event %r", name)
            return
        try:
            handle(self, frame)
        except (KeyError, ValueError, TypeError) as e:
            log.warning("malformed %s event %s: %r", name, frame, e)

    def _event_room_state_changed(self, frame: dict) -> None:
        reason = R(int(frame["reason"]))
        code, extended = int(frame.get("error_code") or 0), _dict(frame.get("extended_data"))
        if reason in (R.KICK_OUT, R.LOGOUT) and self._room_id is not None:
            self._end_session(reason, code, extended)
        else:
            self._emit_room(frame.get("room_id") or self._room_id, reason, code, extended)

    def _event_room_user_update(self, frame: dict) -> None:
        users = [User.from_wire(u) for u in frame["users"]]
        self._dispatcher.emit("on_room_user_update", frame["room_id"], UpdateType(int(frame["update_type"])), users)

    def _event_room_stream_update(self, frame: dict) -> None:
        streams = [Stream.from_wire(s) for s in frame["streams"]]
        self._dispatcher.emit("on_room_stream_update", frame["room_id"], UpdateType(int(frame["update_type"])),
                              streams, _dict(frame.get("extended_data")))

    def _event_publisher_state_update(self, frame: dict) -> None:
        stream_id, state = frame["stream_id"], PublisherState(int(frame["state"]))
        channel = next((ch for ch, p in self._publishers.items() if p.stream_id == stream_id), None)
        if channel is None:
            return
        if state is PublisherState.NO_PUBLISH:
            self._close_media(self._publishers.pop(channel).media)
        else:
            self._publishers[channel].state = state
        self._emit_publisher(stream_id, state, int(frame.get("error_code") or 0), _dict(frame.get("extended_data")))

    def _event_player_state_update(self, frame: dict) -> None:
        stream_id, state = frame["stream_id"], PlayerState(int(frame["state"]))
        player = self._players.get(stream_id)
        if player is None:
            return
        if state is PlayerState.NO_PLAY:
            del self._players[stream_id]
            self._stop_player_media(stream_id, player)
        elif player.with_media:
            player.live = state is PlayerState.PLAYING
            if player.live:  # PLAYING is reported with the first frame from now on
                if player.media is not None:
                    player.media.arm(lambda: self._on_first_frame(stream_id, player))
                return
            if player.media is not None:
                player.media.disarm()
            player.state = state
        else:
            player.state = state
        self._emit_player(stream_id, state, int(frame.get("error_code") or 0), _dict(frame.get("extended_data")))

    def _event_room_token_will_expire(self, frame: dict) -> None:
        self._dispatcher.emit("on_room_token_will_expire", frame.get("room_id") or self._room_id,
                              int(frame["remaining_seconds"]))

    def _event_server_shutdown(self, frame: dict) -> None:
        log.info("node is shutting down; will try to resume the session elsewhere or after restart")

    _EVENTS = {
        "room_state_changed": _event_room_state_changed,
        "room_user_update": _event_room_user_update,
        "room_stream_update": _event_room_stream_update,
        "publisher_state_update": _event_publisher_state_update,
        "player_state_update": _event_player_state_update,
        "room_token_will_expire": _event_room_token_will_expire,
        "server_shutdown": _event_server_shutdown,
    }

    # -- connection state ------------------------------------------------------------------------

    def _on_reconnecting(self) -> None:
        self._emit_room(self._room_id, R.RECONNECTING, 0)

    def _on_reconnected(self, result: dict) -> None:
        self._emit_room(self._room_id, R.RECONNECTED, 0)

    def _on_reconnect_failed(self) -> None:
        if self._room_id is not None:
            self._end_session(R.RECONNECT_FAILED, ErrorCode.RECONNECT_FAILED)

    def _end_session(self, reason: RoomStateChangedReason, code: int, extended: dict | None = None) -> None:
        """The session is over: report `reason`, then every publisher and player as stopped."""
        room, self._room_id = self._room_id, None
        if self._conn is not None:
            self._conn.forget_session()
        for pub in self._publishers.values():
            self._close_media(pub.media)
        for stream_id, player in self._players.items():
            self._stop_player_media(stream_id, player)
        self._emit_room(room, reason, code, extended)
        for pub in self._publishers.values():
            self._emit_publisher(pub.stream_id, PublisherState.NO_PUBLISH, code)
        for stream_id in self._players:
            self._emit_player(stream_id, PlayerState.NO_PLAY, code)
        self._publishers.clear()
        self._players.clear()

    def _close_media(self, media) -> None:
        """Stop a MediaPublisher/MediaPlayer now; destroy waits for its worker thread."""
        if media is not None:
            media.close()
            task = asyncio.get_running_loop().create_task(media.wait_closed())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def _stop_player_media(self, stream_id: str, player: _Player) -> None:
        if player.media is not None:
            self._close_media(player.media)
            self._player_stats[stream_id] = player.media.stats()

    # -- helpers ---------------------------------------------------------------------------------

    def _check_alive(self) -> None:
        if self._destroyed:
            raise EngineError(ErrorCode.ENGINE_DESTROYED)

    def _emit_room(self, room_id, reason: RoomStateChangedReason, code: int, extended: dict | None = None) -> None:
        self._dispatcher.emit("on_room_state_changed", room_id, reason, int(code), dict(extended or {}))

    def _emit_publisher(self, stream_id: str, state: PublisherState, code: int, extended: dict | None = None) -> None:
        self._dispatcher.emit("on_publisher_state_update", stream_id, state, int(code), dict(extended or {}))

    def _emit_player(self, stream_id: str, state: PlayerState, code: int, extended: dict | None = None) -> None:
        self._dispatcher.emit("on_player_state_update", stream_id, state, int(code), dict(extended or {}))


def _dict(value: object) -> dict:
    return dict(value) if isinstance(value, dict) else {}


def _enum(cls, value: object, default):
    try:
        return cls(int(value))
    except (TypeError, ValueError):
        return default

