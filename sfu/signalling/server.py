"""The WebSocket shell around the room service: sockets in, frames out, one timer.

After every input (a frame, a socket closing, the timer) it drains every output of the core and
re-arms the one timer, as aioquic's asyncio adapter does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque

from aiohttp import WSMsgType, web

from sfu.config import SignallingConfig
from sfu.enums import ResourceMode
from sfu.errors import ErrorCode, SfuError
from sfu.media.endpoint import parse_tracks
from sfu.media.router import DEFAULT_TRACKS
from sfu.room import Close, MediaChange, RoomService, Send
from sfu.signalling import protocol
from sfu.signalling.ratelimit import TokenBucket

log = logging.getLogger("sfu.signalling")

HARD_MAX_FRAME = 1 << 20  # aiohttp closes the socket (1009) above this
MAX_QUEUED_FRAMES = 20_000  # a client that does not read is cut off
CLOSE_CODE = 4000  # application close code; the error frame before it says why


class _Conn:
    __slots__ = ("conn_id", "ws", "queue", "wake", "closing", "bucket", "dropped", "last_rl_error", "writer")

    def __init__(self, conn_id: int, ws: web.WebSocketResponse, bucket: TokenBucket) -> None:
        self.conn_id = conn_id
        self.ws = ws
        self.queue: deque[str | None] = deque()  # None: close after what is queued
        self.wake = asyncio.Event()
        self.closing = False
        self.bucket = bucket
        self.dropped = 0
        self.last_rl_error = float("-inf")
        self.writer: asyncio.Task | None = None


class SignallingServer:
    def __init__(self, service: RoomService, config: SignallingConfig) -> None:
        self.service = service
        self.config = config
        self._conns: dict[int, _Conn] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.counters = {"frames_in": 0, "frames_rejected": 0, "rate_limited": 0}
        self.media = None  # the MediaService, once attached

    def attach_media(self, media) -> None:
        self.media = media

    def _with_media(self, conn_id: int, kind: str, fields: dict, result: dict) -> dict:
        """Tell a publisher where each track's RTP goes, and a player which SSRCs it receives."""
        if self.media is None or kind not in ("publish", "play"):
            return result
        app_id = self.service.app_id_of(conn_id)
        if kind == "play":
            media = self.media.play(app_id, result["stream_id"], self.service.session_id_of(conn_id),
                                    l3=result["resource_mode"] != int(ResourceMode.ONLY_RTC))
            return {**result, "media": media}
        specs = parse_tracks(fields["tracks"]) if fields.get("tracks") is not None else DEFAULT_TRACKS
        try:
            media = self.media.publish(app_id, result["stream_id"], specs)
        except SfuError:
            self.service.stop_publish(conn_id, result["stream_id"], asyncio.get_running_loop().time())
            raise
        return {**result, "media": media}

    @property
    def connections(self) -> int:
        return len(self._conns)

    def session_states(self, gauges: dict[int, dict[str, int]] | None = None) -> dict[str, int]:
        """Signalling sessions: attached (logged in on an open WebSocket) and detached (their socket
        is gone; they wait in the reconnect grace window). `gauges`: the room service's, when the
        caller has just read them (a scrape: they walk every user)."""
        attached = sum(1 for c in self._conns if self.service.session_id_of(c) is not None)
        detached = sum(g["detached"] for g in (gauges if gauges is not None else self.service.gauges()).values())
        return {"attached": attached, "detached": detached}

    # ----- the socket ----------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=HARD_MAX_FRAME, autoping=True)
        await ws.prepare(request)
        loop = asyncio.get_running_loop()
        conn_id = self.service.connect(loop.time())
        conn = _Conn(conn_id, ws, TokenBucket(self.config.rate_limit_per_second, self.config.rate_limit_burst,
                                              loop.time()))
        self._conns[conn_id] = conn
        conn.writer = asyncio.create_task(self._write(conn), name=f"sfu-ws-writer-{conn_id}")
        self.pump()
        try:
            async for msg in ws:
                if conn.closing:
                    break
                if msg.type is WSMsgType.TEXT:
                    self._on_text(conn, msg.data)
                elif msg.type is WSMsgType.BINARY:
                    self._send_error(conn, None, SfuError(ErrorCode.MALFORMED_MESSAGE, "binary frames are not part of the protocol"))
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            if not conn.closing:  # the peer went away: the session (if any) is detached
                conn.closing = True
                self.service.disconnect(conn_id, loop.time())
                self.pump()
            conn.queue.append(None)
            conn.wake.set()
            await asyncio.shield(conn.writer)
            self._conns.pop(conn_id, None)
        return ws

    def _on_text(self, conn: _Conn, text: str) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.counters["frames_in"] += 1
        if not conn.bucket.allow(now):
            conn.dropped += 1
            self.counters["rate_limited"] += 1
            if conn.dropped > 10 * self.config.rate_limit_burst:
                self._close(conn, SfuError(ErrorCode.RATE_LIMITED, "closed: the connection kept flooding"))
            elif now - conn.last_rl_error >= 1.0:
                conn.last_rl_error = now
                self._send_error(conn, None, SfuError(
                    ErrorCode.RATE_LIMITED,
                    f"more than {self.config.rate_limit_per_second:g} messages/s; dropped {conn.dropped} so far"))
            return
        conn.dropped = 0
        if len(text) > self.config.max_message_bytes or len(text.encode("utf-8", "surrogatepass")) > self.config.max_message_bytes:
            self.counters["frames_rejected"] += 1
            self._send_error(conn, None, SfuError(ErrorCode.MESSAGE_TOO_LARGE,
                                                  f"frame larger than {self.config.max_message_bytes} bytes"))
            return
        try:
            request_id, kind, fields = protocol.decode(text)
        except protocol.ProtocolError as e:
            self.counters["frames_rejected"] += 1
            self._send_error(conn, e.request_id, e)
            return
        self.service.touch(conn.conn_id, now)
        try:
            if kind == "publish" and fields.get("tracks") is not None:
                parse_tracks(fields["tracks"])  # refuse bad tracks before the stream is announced
            result = protocol.dispatch(self.service, conn.conn_id, kind, fields, now, time.time())
            result = self._with_media(conn.conn_id, kind, fields, result)
        except SfuError as e:
            self._send_error(conn, request_id, e)
        except Exception:  # a bug: the session and the node go on
            log.exception("request %s failed", kind)
            self._send_error(conn, request_id, SfuError(ErrorCode.INTERNAL_ERROR))
        else:
            self._enqueue(conn, protocol.reply(request_id, result))
        self.pump()

    # ----- outputs -------------------------------------------------------------------------------

    def _enqueue(self, conn: _Conn, message: dict) -> None:
        if conn.closing:
            return
        if len(conn.queue) >= MAX_QUEUED_FRAMES:
            log.warning("connection %d does not read its frames; closing it", conn.conn_id)
            conn.queue.clear()
            self._close(conn, SfuError(ErrorCode.CONNECTION_LOST, "the client does not read its frames"))
            return
        conn.queue.append(json.dumps(message, separators=(",", ":")))
        conn.wake.set()

    def _send_error(self, conn: _Conn, request_id: int | None, exc: SfuError) -> None:
        self._enqueue(conn, protocol.error(request_id, exc))

    def _close(self, conn: _Conn, exc: SfuError) -> None:
        """Tell the client why, then close the socket; the core learns of it as a disconnect."""
        if conn.closing:
            return
        self._send_error(conn, None, exc)
        conn.closing = True
        conn.queue.append(None)
        conn.wake.set()
        self.service.disconnect(conn.conn_id, asyncio.get_running_loop().time())

    async def _write(self, conn: _Conn) -> None:
        ws = conn.ws
        try:
            while True:
                while not conn.queue:
                    conn.wake.clear()
                    await conn.wake.wait()
                item = conn.queue.popleft()
                if item is None:
                    break
                await ws.send_str(item)
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass
        finally:
            if not ws.closed:
                try:
                    await ws.close(code=CLOSE_CODE)
                except (ConnectionError, RuntimeError):
                    pass

    def pump(self) -> None:
        """Drain the core's outputs and re-arm its timer."""
        service = self.service
        while (out := service.next_output()) is not None:
            if isinstance(out, MediaChange):
                if self.media is not None:
                    self.media.on_change(out)
                continue
            conn = self._conns.get(out.conn_id)
            if conn is None:
                continue
            if isinstance(out, Send):
                self._enqueue(conn, out.message)
            elif isinstance(out, Close):
                if not conn.closing:
                    self._send_error(conn, None, SfuError(out.code, out.message))
                    conn.closing = True
                    conn.queue.append(None)
                    conn.wake.set()
        deadline = service.next_timer()
        if deadline != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = None if deadline is None else asyncio.get_running_loop().call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.service.handle_timer(asyncio.get_running_loop().time())
        self.pump()

    async def shutdown(self, timeout: float = 2.0) -> None:
        """Tell every session the node stops and close the sockets."""
        self.service.shutdown(asyncio.get_running_loop().time())
        self.pump()
        writers = [c.writer for c in self._conns.values() if c.writer is not None]
        if writers:
            await asyncio.wait(writers, timeout=timeout)
        for c in list(self._conns.values()):
            if c.writer is not None and not c.writer.done():
                c.writer.cancel()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
