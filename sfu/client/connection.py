"""One signalling connection for one login session: socket, request/reply, heartbeats, reconnection.

States (docs/protocol.md "Sessions, liveness and reconnection"):

    CONNECTING   --open()-------------------------------------------> OPEN
    OPEN         --socket drop or silence, session attached---------> RECONNECTING
    RECONNECTING --resume reply--------------------------------------> OPEN
    RECONNECTING --RECONNECT_FAILED reply, or grace over since drop--> CLOSED
    OPEN         --socket drop, no session attached------------------> CLOSED
    any          --close()-------------------------------------------> CLOSED

The login reply attaches the session (`attach_session`); logout and kick-out forget it
(`forget_session`), so the socket closing afterwards is not treated as a drop. Events carry a
per-session `seq`: heartbeats acknowledge the last one seen, `resume` asks for every later one, and
a replayed event already seen is dropped. Replies may carry an
`on_reply` hook that runs when the reply is read, before any later frame is handled; that is how
the engine reports LOGINED/PUBLISHING/RECONNECTED before the events that follow them.
Time is the event loop's clock only.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import json
import logging
from dataclasses import dataclass
from typing import Callable, Protocol

import aiohttp

from sfu.errors import ErrorCode

from .error import EngineError

log = logging.getLogger("sfu.client")

BACKOFF_START = 0.05
BACKOFF_CAP = 1.0
_SEND_ERRORS = (ConnectionError, RuntimeError, aiohttp.ClientError)
_CONNECT_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)
# resume failures worth another attempt; any other answer (RECONNECT_FAILED above all) is final
_RETRY_RESUME = frozenset({ErrorCode.CONNECTION_LOST, ErrorCode.REQUEST_TIMEOUT, ErrorCode.NOT_CONNECTED,
                           ErrorCode.RATE_LIMITED, ErrorCode.INTERNAL_ERROR, ErrorCode.SERVER_SHUTTING_DOWN})


class State(enum.Enum):
    CONNECTING = "connecting"
    OPEN = "open"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


class Listener(Protocol):
    def on_event(self, frame: dict) -> None: ...
    def on_reconnecting(self) -> None: ...
    def on_reconnected(self, result: dict) -> None: ...
    def on_reconnect_failed(self) -> None: ...


@dataclass
class _Pending:
    future: asyncio.Future | None  # None: nobody waits (heartbeats)
    on_reply: Callable[[dict], None] | None


def _abort(ws: aiohttp.ClientWebSocketResponse, release: bool = False) -> None:
    """Abort the TCP transport under `ws` (aiohttp has no public handle on it); with `release`,
    also release aiohttp's connection, which it does not do itself when the peer vanishes."""
    response = getattr(ws, "_response", None)
    conn = getattr(response, "connection", None)
    transport = getattr(conn, "transport", None) or getattr(getattr(ws, "_writer", None), "transport", None)
    if transport is not None:
        transport.abort()
    if release and response is not None:
        response.close()


class Connection:
    def __init__(self, http: aiohttp.ClientSession, url: str, listener: Listener, request_timeout: float):
        self._http = http
        self._url = url
        self._listener = listener
        self._request_timeout = request_timeout
        self._loop = asyncio.get_running_loop()
        self._state = State.CONNECTING
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader_task: asyncio.Task | None = None
        self._heartbeat_task: asyncio.Task | None = None
        self._reconnect_task: asyncio.Task | None = None
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count(1)
        self._last_rx = self._loop.time()
        self._drop_time = 0.0
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._session: tuple[str, str] | None = None  # (session_id, resume_token)
        self._last_seq = 0  # the last event seq handed to the listener
        self.heartbeat_interval = 5.0
        self.session_timeout = 15.0
        self.reconnect_grace = 20.0

    @property
    def state(self) -> State:
        return self._state

    @property
    def session_id(self) -> str | None:
        return self._session[0] if self._session else None

    # -- public API --------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect the WebSocket; EngineError(NOT_CONNECTED) when the node cannot be reached."""
        try:
            ws = await self._connect(self._request_timeout)
        except _CONNECT_ERRORS as e:
            self._state = State.CLOSED
            raise EngineError(ErrorCode.NOT_CONNECTED, message=f"cannot connect to {self._url}: {e!r}") from None
        if self._state is not State.CONNECTING:  # closed meanwhile
            await ws.close()
            raise EngineError(ErrorCode.NOT_CONNECTED, message="connection closed while connecting")
        self._attach_socket(ws)
        self._state = State.OPEN

    async def request(self, type_: str, fields: dict | None = None,
                      on_reply: Callable[[dict], None] | None = None) -> dict:
        """Send a request and return its `result`; raise EngineError for an error reply,
        CONNECTION_LOST, REQUEST_TIMEOUT or NOT_CONNECTED. While reconnecting, wait for the outcome first."""
        while self._state is State.RECONNECTING:
            await self._resumed.wait()
        ws = self._ws
        if self._state is not State.OPEN or ws is None:
            raise EngineError(ErrorCode.NOT_CONNECTED, message=f"{type_}: no connection to the node")
        return await self._exchange(ws, type_, fields or {}, on_reply, self._request_timeout)

    def attach_session(self, result: dict) -> None:
        """Take the session from a login reply and start heartbeats (and the liveness check)."""
        self._session = (str(result.get("session_id", "")), str(result.get("resume_token", "")))
        self._apply_timing(result)
        if self._heartbeat_task is None:
            self._heartbeat_task = self._loop.create_task(self._heartbeat_loop(), name="sfu-client-heartbeat")

    def forget_session(self) -> None:
        """The session ended (logout, kick-out): stop heartbeats; a later socket close is no drop."""
        self._session = None
        self._cancel(self._heartbeat_task)
        self._heartbeat_task = None

    def abort_transport(self) -> None:
        """Simulate a network drop: abort the TCP transport under the WebSocket (for tests and tools)."""
        if self._ws is not None:
            _abort(self._ws)

    async def close(self) -> None:
        """Close for good (no reconnection); requests waiting or in flight fail with NOT_CONNECTED."""
        self._state = State.CLOSED
        self._session = None
        for task in (self._heartbeat_task, self._reconnect_task, self._reader_task):
            self._cancel(task)
        self._heartbeat_task = self._reconnect_task = None
        ws, self._ws = self._ws, None
        self._fail_pending(ErrorCode.NOT_CONNECTED)
        self._resumed.set()
        reader, self._reader_task = self._reader_task, None
        if reader is not None and reader is not asyncio.current_task():
            await asyncio.gather(reader, return_exceptions=True)
        if ws is not None and not ws.closed:
            try:
                async with asyncio.timeout(1.0):
                    await ws.close()
            except Exception:  # best effort: the node treats a vanished socket the same way
                _abort(ws, release=True)

    # -- socket and frames -------------------------------------------------------------------

    async def _connect(self, timeout: float) -> aiohttp.ClientWebSocketResponse:
        async with asyncio.timeout(timeout):
            return await self._http.ws_connect(
                self._url, autoping=True, heartbeat=None, timeout=aiohttp.ClientWSTimeout(ws_close=1.0))

    def _attach_socket(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._last_rx = self._loop.time()
        self._reader_task = self._loop.create_task(self._read(ws), name="sfu-client-reader")

    async def _exchange(self, ws, type_: str, fields: dict, on_reply, timeout: float) -> dict:
        rid = next(self._ids)
        fut = self._loop.create_future()
        self._pending[rid] = _Pending(fut, on_reply)
        try:
            try:
                await ws.send_str(json.dumps({"v": 1, "id": rid, "type": type_, **fields}))
            except _SEND_ERRORS as e:
                if fut.done() and not fut.cancelled():
                    fut.exception()  # retrieved; we raise our own below
                raise EngineError(ErrorCode.CONNECTION_LOST, message=f"{type_}: could not send ({e!r})") from None
            try:
                return await asyncio.wait_for(fut, timeout)
            except TimeoutError:
                raise EngineError(ErrorCode.REQUEST_TIMEOUT,
                                  message=f"no answer to {type_!r} within {timeout:g} s") from None
        finally:
            self._pending.pop(rid, None)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            while True:
                msg = await ws.receive()
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self._last_rx = self._loop.time()
                    self._handle_text(msg.data)
                elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                                  aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    break
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("signalling reader failed")
        finally:
            self._lost(ws)

    def _handle_text(self, data: str) -> None:
        try:
            frame = json.loads(data)
        except ValueError:
            log.warning("node sent a frame that is not JSON: %.200r", data)
            return
        if not isinstance(frame, dict):
            log.warning("node sent a frame that is not an object: %.200r", data)
            return
        kind = frame.get("type")
        try:
            if kind == "event":
                if self._is_new_event(frame):
                    self._listener.on_event(frame)
            elif kind in ("reply", "error"):
                self._handle_answer(kind, frame)
            else:
                log.warning("node sent a frame of unknown type %r", kind)
        except Exception:
            log.exception("handling a %s frame failed", kind)

    def _is_new_event(self, frame: dict) -> bool:
        seq = frame.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            return True  # events that end the session carry no seq
        if seq <= self._last_seq:
            log.debug("dropping replayed event %d (already seen up to %d)", seq, self._last_seq)
            return False
        if seq != self._last_seq + 1:
            log.warning("events %d..%d never arrived", self._last_seq + 1, seq - 1)
        self._last_seq = seq
        return True

    def _handle_answer(self, kind: str, frame: dict) -> None:
        rid = frame.get("id")
        pending = self._pending.pop(rid, None) if isinstance(rid, int) else None
        if pending is None:
            if kind == "error":  # e.g. the reason the node gives before closing the socket
                log.info("node error not tied to a waiting request: %s", frame)
            return
        if kind == "reply":
            result = frame.get("result")
            result = result if isinstance(result, dict) else {}
            if pending.on_reply is not None:
                try:
                    pending.on_reply(result)
                except Exception:
                    log.exception("reply hook failed")
            if pending.future is not None and not pending.future.done():
                pending.future.set_result(result)
        elif pending.future is not None and not pending.future.done():
            pending.future.set_exception(EngineError.from_frame(frame))

    # -- drops, liveness, reconnection ---------------------------------------------------------

    def _lost(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """The socket `ws` is gone (closed, aborted, or silent for too long)."""
        if ws is not self._ws:
            return
        self._ws = None
        _abort(ws, release=True)
        if self._reader_task is not asyncio.current_task():
            self._cancel(self._reader_task)
        self._reader_task = None
        if self._state is State.OPEN and self._session is not None:
            self._state = State.RECONNECTING
            self._drop_time = self._loop.time()
            self._resumed.clear()
            log.info("signalling connection lost; reconnecting within %.1f s", self.reconnect_grace)
            self._listener.on_reconnecting()
            self._fail_pending(ErrorCode.CONNECTION_LOST)
            self._reconnect_task = self._loop.create_task(self._reconnect(), name="sfu-client-reconnect")
            return
        if self._state is State.OPEN:
            self._state = State.CLOSED
        self._fail_pending(ErrorCode.CONNECTION_LOST)

    async def _heartbeat_loop(self) -> None:
        last_sent = self._loop.time()
        while True:
            ws = self._ws
            if self._state is not State.OPEN or ws is None:
                await asyncio.sleep(self.heartbeat_interval)
                continue
            now = self._loop.time()
            if now - self._last_rx >= self.session_timeout:
                log.warning("nothing from the node for %.1f s; the connection is dead", now - self._last_rx)
                self._lost(ws)
                continue
            if now - last_sent >= self.heartbeat_interval - 0.001:
                last_sent = now
                self._pending[rid := next(self._ids)] = _Pending(None, None)
                try:
                    async with asyncio.timeout(self.session_timeout):  # a send stuck that long: dead path
                        await ws.send_str(json.dumps({"v": 1, "id": rid, "type": "heartbeat", "ack": self._last_seq}))
                except TimeoutError:
                    self._lost(ws)
                except _SEND_ERRORS:
                    pass  # the reader sees the drop
                continue
            await asyncio.sleep(min(last_sent + self.heartbeat_interval, self._last_rx + self.session_timeout) - now)

    async def _reconnect(self) -> None:
        deadline = self._drop_time + self.reconnect_grace
        delay = BACKOFF_START
        while (remaining := deadline - self._loop.time()) > 0:
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, BACKOFF_CAP)
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                break
            try:
                await self._try_resume(min(remaining, self._request_timeout))
                return
            except EngineError as e:
                if self._state is State.OPEN:
                    return
                if e.code not in _RETRY_RESUME:
                    log.info("node refused to resume the session: %s", e)
                    break
                log.debug("resume attempt failed: %s", e)
            except Exception as e:  # refused, reset, timed out: try again until the grace runs out
                if self._state is State.OPEN:
                    return
                log.debug("reconnect attempt failed: %r", e)
        self._give_up()

    async def _try_resume(self, timeout: float) -> None:
        assert self._session is not None
        session_id, resume_token = self._session
        ws = None
        try:
            async with asyncio.timeout(timeout):
                ws = await self._connect(timeout)
                self._attach_socket(ws)
                fields = {"session_id": session_id, "resume_token": resume_token, "last_event_seq": self._last_seq}
                await self._exchange(ws, "resume", fields, self._on_resumed, timeout)
        except BaseException:
            if ws is not None and self._state is State.RECONNECTING:
                self._lost(ws)  # in RECONNECTING this only discards the attempt's socket
            raise

    def _on_resumed(self, result: dict) -> None:
        self._state = State.OPEN
        self._apply_timing(result)
        self._last_rx = self._loop.time()
        self._reconnect_task = None
        self._resumed.set()
        log.info("signalling connection resumed")
        self._listener.on_reconnected(result)

    def _give_up(self) -> None:
        self._state = State.CLOSED
        self._reconnect_task = None
        self.forget_session()
        self._resumed.set()
        log.info("could not resume the session within %.1f s", self.reconnect_grace)
        self._listener.on_reconnect_failed()

    # -- helpers ---------------------------------------------------------------------------------

    def _apply_timing(self, result: dict) -> None:
        for name in ("heartbeat_interval", "session_timeout", "reconnect_grace"):
            value = result.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                setattr(self, name, float(value))

    def _fail_pending(self, code: ErrorCode) -> None:
        pending, self._pending = self._pending, {}
        for p in pending.values():
            if p.future is not None and not p.future.done():
                p.future.set_exception(EngineError(code))

    @staticmethod
    def _cancel(task: asyncio.Task | None) -> None:
        if task is not None and task is not asyncio.current_task():
            task.cancel()
