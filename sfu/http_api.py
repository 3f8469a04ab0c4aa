"""HTTP API for stock RTP tools (ffmpeg, GStreamer) that cannot speak the signalling protocol.

POST /api/v1/publish, POST /api/v1/play, DELETE /api/v1/sessions/<id>; bearer-token auth.
Each HTTP session is a session of the room service on a connection with no socket: the API
keeps it alive (a publish session while its packets flow, a play session until it is deleted),
and the stream appears in its room with the usual events.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import time
from dataclasses import dataclass

from aiohttp import web

from sfu.enums import ResourceMode
from sfu.errors import ErrorCode, SfuError
from sfu.media.endpoint import parse_tracks
from sfu.media.reachability import destination
from sfu.media.router import KINDS, CodecMismatch, TrackSpec
from sfu.media.service import MediaService
from sfu.room import RoomService
from sfu.signalling.server import SignallingServer

log = logging.getLogger("sfu.http_api")

STATUS = {
    ErrorCode.UNAUTHORIZED: 401, ErrorCode.TOKEN_INVALID: 401, ErrorCode.APP_ID_INVALID: 401,
    ErrorCode.PUBLISH_PRIVILEGE_DENIED: 403,
    ErrorCode.STREAM_ID_IN_USE: 409, ErrorCode.PLAY_CODEC_MISMATCH: 409,
    ErrorCode.SESSION_NOT_FOUND: 404,
    ErrorCode.ROOM_USER_LIMIT: 429, ErrorCode.APP_ROOM_LIMIT: 429, ErrorCode.ROOM_STREAM_LIMIT: 429,
    ErrorCode.STREAM_PLAYER_LIMIT: 429,
    ErrorCode.NO_MEDIA_PORT: 503, ErrorCode.INTERNAL_ERROR: 500,
}
MODES = {"l3": ResourceMode.ONLY_L3, "rtc": ResourceMode.ONLY_RTC}
DEFAULT_PLAY = {"video": TrackSpec("video", "VP8", 96), "audio": TrackSpec("audio", "opus", 111)}


def error_response(e: SfuError) -> web.Response:
    return web.json_response({"code": int(e.code), "name": e.code.name, "message": e.message},
                             status=STATUS.get(e.code, 400))


@dataclass(slots=True)
class HttpSession:
    session_id: str
    conn_id: int
    app_id: int
    stream_id: str
    kind: str  # "publish" | "play"
    started: float
    addrs: tuple = ()  # a play session's: where the node sends its tracks
    dests: tuple = ()  # ... each as one spelling (`destination`): how reachability names it


def _str(body: dict, key: str) -> str:
    v = body.get(key)
    if not isinstance(v, str):
        raise SfuError(ErrorCode.MALFORMED_MESSAGE, f"field {key!r} must be a string")
    return v


def sdp_for_player(stream_id: str, tracks: list[tuple[str, int, TrackSpec]]) -> str:
    """An SDP that `ffmpeg -protocol_whitelist file,udp,rtp -i play.sdp` opens as it is.

    `tracks`: (host, port, spec) per media section, in order.
    """
    first = tracks[0][0]
    ip6 = ":" in first
    lines = ["v=0", f"o=- 0 0 IN {'IP6' if ip6 else 'IP4'} {first}", f"s=sfu {stream_id}", "t=0 0"]
    for host, port, spec in tracks:
        lines.append(f"m={spec.kind} {port} RTP/AVP {spec.payload_type}")
        lines.append(f"c=IN {'IP6' if ':' in host else 'IP4'} {host}")
        if spec.kind == "audio":
            lines.append(f"a=rtpmap:{spec.payload_type} opus/48000/2")
        else:
            lines.append(f"a=rtpmap:{spec.payload_type} {spec.codec}/90000")
            if spec.codec == "H264":
                lines.append(f"a=fmtp:{spec.payload_type} packetization-mode=1")
        lines.append("a=recvonly")
    return "\r\n".join(lines) + "\r\n"


class HttpApi:
    def __init__(self, service: RoomService, signalling: SignallingServer, media: MediaService,
                 rtp_idle_timeout: float, keepalive_interval: float, rtp_unreachable_timeout: float = 30.0) -> None:
        self.service = service
        self.signalling = signalling
        self.media = media
        self.rtp_idle_timeout = rtp_idle_timeout
        self.rtp_unreachable_timeout = rtp_unreachable_timeout
        self.keepalive_interval = keepalive_interval
        self.sessions: dict[str, HttpSession] = {}
        # the play sessions by destination (`destination`: one spelling of an address), so that the
        # liveness tick asks about the few destinations reported unreachable, not each session's
        self._players_at: dict[tuple, set[str]] = {}
        self._task: asyncio.Task | None = None
        media.codec_mismatch_listeners.append(self._codec_mismatch)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/publish", self.publish)
        app.router.add_post("/api/v1/play", self.play)
        app.router.add_delete("/api/v1/sessions/{session_id}", self.delete)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._keepalive())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    # ----- requests ------------------------------------------------------------------------

    async def _body(self, request: web.Request) -> tuple[str, dict]:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise SfuError(ErrorCode.UNAUTHORIZED)
        try:
            body = json.loads(await request.text())
        except (ValueError, UnicodeDecodeError) as e:
            raise SfuError(ErrorCode.MALFORMED_MESSAGE, f"body is not valid JSON: {e}") from None
        if not isinstance(body, dict):
            raise SfuError(ErrorCode.MALFORMED_MESSAGE, "body must be a JSON object")
        return auth[7:].strip(), body

    def _login(self, token: str, body: dict, now: float) -> int:
        app_id = body.get("app_id")
        if isinstance(app_id, bool) or not isinstance(app_id, int):
            raise SfuError(ErrorCode.MALFORMED_MESSAGE, "field 'app_id' must be an integer")
        room_id, user_id = _str(body, "room_id"), _str(body, "user_id")
        conn = self.service.connect(now)
        try:
            self.service.login(conn, app_id=app_id, room_id=room_id, user_id=user_id, user_name=user_id,
                               token=token, notify=False, now=now, wallclock=time.time(), heartbeats=False)
        except SfuError:
            self.service.disconnect(conn, now)
            raise
        return conn

    def _end(self, conn: int, now: float) -> None:
        session = self.service.session_of(conn)
        if session is not None:
            self.service.logout(conn, session.room.room_id, now)
        self.service.disconnect(conn, now)

    def _register(self, conn: int, body: dict, kind: str, now: float, addrs: tuple = ()) -> HttpSession:
        sid = self.service.session_id_of(conn)
        dests = tuple(destination(a) for a in addrs)
        s = self.sessions[sid] = HttpSession(sid, conn, body["app_id"], body["stream_id"], kind, now, addrs, dests)
        for dest in dests:
            self._players_at.setdefault(dest, set()).add(sid)
        return s

    def _forget(self, sid: str) -> HttpSession | None:
        """The session out of this API's books (its room session is the caller's to end)."""
        s = self.sessions.pop(sid, None)
        for dest in s.dests if s is not None else ():
            at = self._players_at.get(dest)
            if at is not None:
                at.discard(sid)
                if not at:
                    del self._players_at[dest]
        return s

    async def publish(self, request: web.Request) -> web.Response:
        now = asyncio.get_running_loop().time()
        conn = None
        try:
            token, body = await self._body(request)
            stream_id = _str(body, "stream_id")
            specs = parse_tracks(body.get("tracks"))
            conn = self._login(token, body, now)
            self.service.publish(conn, stream_id, "", now)
            media = self.media.publish(body["app_id"], stream_id, specs)
            session = self._register(conn, body, "publish", now)
        except SfuError as e:
            if conn is not None:
                self._end(conn, now)
            self.signalling.pump()
            return error_response(e)
        self.signalling.pump()
        return web.json_response({"session_id": session.session_id, "tracks": [
            {"kind": t["kind"], "host": media["host"], "port": t["port"]} for t in media["tracks"]]}, status=201)

    async def play(self, request: web.Request) -> web.Response:
        now = asyncio.get_running_loop().time()
        conn = None
        try:
            token, body = await self._body(request)
            stream_id = _str(body, "stream_id")
            mode = MODES.get(body.get("mode", "l3"))
            if mode is None:
                raise SfuError(ErrorCode.RESOURCE_MODE_UNSUPPORTED, "mode must be 'l3' or 'rtc'")
            wanted = self._play_tracks(body.get("tracks"))
            conn = self._login(token, body, now)
            self.service.play(conn, stream_id, int(mode), now)
            live = {spec.kind: spec for _, spec in self.media.router.publisher_tracks(body["app_id"], stream_id)}
            specs = {kind: self._play_spec(stream_id, w, live.get(kind)) for kind, w in wanted.items()}
            # the SDP names a codec per track: the player takes no other (a later publisher's of
            # another codec ends the session: _codec_mismatch)
            self.media.play(body["app_id"], stream_id, self.service.session_id_of(conn),
                            addrs={kind: w["addr"] for kind, w in wanted.items()},
                            payload_types={kind: spec.payload_type for kind, spec in specs.items()},
                            l3=mode is ResourceMode.ONLY_L3, codecs={kind: spec.codec for kind, spec in specs.items()})
            session = self._register(conn, body, "play", now, tuple(w["addr"] for w in wanted.values()))
        except SfuError as e:
            if conn is not None:
                self._end(conn, now)
            self.signalling.pump()
            return error_response(e)
        self.signalling.pump()
        sdp = sdp_for_player(stream_id, [(w["addr"][0], w["addr"][1], specs[k]) for k, w in wanted.items()])
        return web.json_response({"session_id": session.session_id, "sdp": sdp}, status=201)

    def _play_tracks(self, raw: object) -> dict[str, dict]:
        if not isinstance(raw, list) or not raw:
            raise SfuError(ErrorCode.INVALID_ARGUMENT, "tracks must be a non-empty list")
        out: dict[str, dict] = {}
        for i, t in enumerate(raw):
            if not isinstance(t, dict) or t.get("kind") not in KINDS:
                raise SfuError(ErrorCode.INVALID_ARGUMENT, f"tracks[{i}].kind must be 'audio' or 'video'")
            kind = t["kind"]
            if kind in out:
                raise SfuError(ErrorCode.INVALID_ARGUMENT, "at most one track of each kind")
            host, port = t.get("host"), t.get("port")
            try:
                ipaddress.ip_address(host)
            except (ValueError, TypeError):
                raise SfuError(ErrorCode.INVALID_ARGUMENT, f"tracks[{i}].host must be an IP address, got {host!r}") from None
            if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
                raise SfuError(ErrorCode.INVALID_ARGUMENT, f"tracks[{i}].port must be 1-65535, got {port!r}")
            spec = DEFAULT_PLAY[kind]
            if "codec" in t or "payload_type" in t:
                (spec,) = parse_tracks([{"kind": kind, "codec": t.get("codec", spec.codec),
                                         "payload_type": t.get("payload_type", spec.payload_type)}])
            out[kind] = {"addr": (host, port), "spec": spec, "codec": "codec" in t, "payload_type": "payload_type" in t}
        return out

    @staticmethod
    def _play_spec(stream_id: str, wanted: dict, live: TrackSpec | None) -> TrackSpec:
        """What a play track's SDP names: before the stream is published, what it asked for (or the
        defaults); after, the stream's codec (a different one asked for is refused: the node does
        not transcode) with the payload type it asked for, or the publisher's."""
        spec = wanted["spec"]
        if live is None:
            return spec
        if wanted["codec"] and spec.codec != live.codec:
            raise SfuError(ErrorCode.PLAY_CODEC_MISMATCH,
                           f"stream {stream_id!r} is published with {live.kind} codec {live.codec}; "
                           f"the play asked for {spec.codec}")
        return TrackSpec(live.kind, live.codec, spec.payload_type if wanted["payload_type"] else live.payload_type)

    def _codec_mismatch(self, m: CodecMismatch) -> None:
        """A new publisher of a stream this HTTP play session waited for, with another codec than the
        session's SDP names: the session ends (right after the publish), as DELETE would end it."""
        session = self.sessions.get(m.session_id)
        if session is None or session.kind != "play":
            return
        log.warning("HTTP play session %s ended: stream %r is published with %s codec %s, its SDP names %s",
                    m.session_id, m.stream_id, m.kind, m.published, m.expected)
        asyncio.get_running_loop().call_soon(self._end_session, m.session_id)

    def _end_session(self, session_id: str) -> None:
        session = self._forget(session_id)
        if session is None or self.service.session_id_of(session.conn_id) != session_id:
            return
        self._end(session.conn_id, asyncio.get_running_loop().time())
        self.signalling.pump()

    async def delete(self, request: web.Request) -> web.Response:
        now = asyncio.get_running_loop().time()
        session = self._forget(request.match_info["session_id"])
        if session is None or self.service.session_id_of(session.conn_id) != session.session_id:
            return error_response(SfuError(ErrorCode.SESSION_NOT_FOUND))
        self._end(session.conn_id, now)
        self.signalling.pump()
        return web.Response(status=204)

    # ----- liveness ----------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """End idle publishers, players gone, and forget sessions the room service ended (kicked out,
        token expired). (No client heartbeats an HTTP session: the room service gives them no
        liveness timeout, so a stall of the node itself, longer than session_timeout, does not end
        them.) A player is gone when every address of its session has been reported unreachable
        (ICMP: sfu/media/reachability.py) for rtp_unreachable_timeout without a break: a player that
        plays from our SDP sends the node nothing, so that is the only sign of it. Only the sessions
        at a destination reported unreachable are looked at for that (`_players_at`): with none, a
        tick costs a look at each session's room session, not an address parsed per player."""
        session_id_of = self.service.session_id_of
        for sid, s in list(self.sessions.items()):
            if session_id_of(s.conn_id) != sid:  # kicked out, token expired, ...
                self._forget(sid)
                self.service.disconnect(s.conn_id, now)
                continue
            if s.kind == "publish":
                last = self.media.router.last_packet(s.app_id, s.stream_id)
                if now - (last if last is not None else s.started) > self.rtp_idle_timeout:
                    log.info("HTTP publish session %s idle for %.1f s: ended", sid, self.rtp_idle_timeout)
                    self._forget(sid)
                    self._end(s.conn_id, now)
        unreachable = self.media.endpoint.unreachable()  # (usually empty)
        at = self._players_at
        for sid in sorted({sid for dest in unreachable for sid in at.get(dest, ())}):
            s = self.sessions[sid]
            gone = min(unreachable.get(dest, 0.0) for dest in s.dests)
            if gone >= self.rtp_unreachable_timeout:
                log.info("HTTP play session %s: its addresses unreachable for %.1f s: ended", sid, gone)
                self._forget(sid)
                self._end(s.conn_id, now)
        self.signalling.pump()

    async def _keepalive(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.keepalive_interval)
            self.tick(loop.time())
