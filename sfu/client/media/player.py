"""MediaPlayer: the IO shell that receives a played stream's tracks from the node over RTP/UDP.

One UDP socket per track of the play reply (`media.tracks[i]`: kind, ssrc). From each socket an
RTCP receiver report with sender SSRC = the track's ssrc goes to the node's media address
(`media.host:media.port`, or where ``route`` sends that track instead: a relay that the node then
latches) at once and then every second: that latches the socket's address on the node, and
keeps reporting. Datagrams from that host go to the track's core (``PlayerTrack``); after every
input its frames and RTCP are drained, each frame is given to ``on_frame`` when set, and one
timer is re-armed at ``next_timer()``. Datagrams from other hosts are ignored.

With ``decode`` the video frames are decoded with PyAV on one worker thread, in order; when the
decoder falls more than ``MAX_DECODE_BACKLOG`` frames behind, the backlog is dropped and decoding
resumes at the next keyframe (a decode error does the same and asks for a keyframe).

``arm(callback)`` makes the next frame (audio or video) call ``callback()`` once; the engine
uses it to report PLAYING when media arrives. ``close()`` stops at once; ``wait_closed()`` also
lets the decoder finish the frames already queued.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sfu.media.codecs import Codec

from ..types import PlayerStats
from .av_codecs import DecodeError, VideoDecoder
from .player_track import PlayerTrack, ReceivedFrame
from .udp import REPORT_INTERVAL, UdpProtocol, guard, local_address_for, media_host, resolve, route

log = logging.getLogger("sfu.client.media")

__all__ = ["MediaPlayer"]

MAX_DECODE_BACKLOG = 30


class _Track:
    def __init__(self, core: PlayerTrack, remote: tuple[str, int]) -> None:
        self.core = core
        self.remote = remote
        self.transport: asyncio.DatagramTransport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.timer_due: float | None = None  # the core's next_timer() the timer was armed for

    def send(self, packets: list[bytes]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            for p in packets:
                self.transport.sendto(p, self.remote)


class MediaPlayer:
    def __init__(self, media: dict, server_url: str, *, decode: bool = False, started_at: float = 0.0,
                 route=None, on_frame: Callable[[ReceivedFrame], None] | None = None) -> None:
        self.host = media_host(str(media.get("host") or ""), server_url)
        self.port = int(media["port"])
        self.decode = decode
        self.started_at = started_at
        self.route = route
        self.on_frame = on_frame
        self._specs = [t for t in media.get("tracks") or [] if t.get("kind") in ("audio", "video")]
        self._tracks: dict[str, _Track] = {}
        self._tasks: list[asyncio.Task] = []
        self._closed = False
        self._notify: Callable[[], None] | None = None
        self._queue: asyncio.Queue[ReceivedFrame | None] = asyncio.Queue()
        self._executor: ThreadPoolExecutor | None = None
        self._decoder: VideoDecoder | None = None
        self._need_keyframe = False
        self.frames_decoded = 0
        self.decode_errors = 0
        self.decode_dropped = 0
        self.foreign = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.host = await resolve(self.host)
        for spec in self._specs:
            kind = spec["kind"]
            codec = None
            if spec.get("codec"):
                try:
                    codec = Codec.from_name(str(spec["codec"]))
                except ValueError:
                    codec = None
            track = _Track(PlayerTrack(kind, int(spec["ssrc"]), codec),
                           await route(self.route, kind, (self.host, self.port)))
            local, family = local_address_for(track.remote[0])
            track.transport, _ = await loop.create_datagram_endpoint(
                lambda tr=track: UdpProtocol(lambda data, addr: self._on_datagram(tr, data, addr)),
                local_addr=(local, 0), family=family)
            self._tracks[kind] = track
            if self._closed:
                self._close_transports()
                return
            track.send([track.core.receiver_report(loop.time())])
        self._tasks.append(loop.create_task(guard(self._report_loop)))
        if self.decode:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sfu-video-decode")
            self._tasks.append(loop.create_task(guard(self._decode_loop)))

    def arm(self, callback: Callable[[], None]) -> None:
        self._notify = callback

    def disarm(self) -> None:
        self._notify = None

    # -- input ----------------------------------------------------------------------------------

    def _on_datagram(self, track: _Track, data: bytes, addr) -> None:
        if addr[0] != track.remote[0]:
            self.foreign += 1
            return
        now = asyncio.get_running_loop().time()
        track.core.on_datagram(data, now, time.time())
        self._drain(track, now)

    def _on_timer(self, track: _Track) -> None:
        track.timer = None
        if self._closed:
            return
        now = asyncio.get_running_loop().time()
        track.core.poll(now, time.time())
        self._drain(track, now)

    def _drain(self, track: _Track, now: float) -> None:
        track.send(track.core.take_rtcp())
        frames = track.core.take_frames()
        if frames:
            if self._notify is not None:
                notify, self._notify = self._notify, None
                notify()
            if self.on_frame is not None:
                for f in frames:
                    self.on_frame(f)
            if self.decode:
                for f in frames:
                    if f.kind == "video":
                        self._queue.put_nowait(f)
        due = track.core.next_timer()
        if track.timer is not None and due != track.timer_due:
            track.timer.cancel()
            track.timer = None
        if due is not None and track.timer is None and not self._closed:
            track.timer_due = due
            track.timer = asyncio.get_running_loop().call_at(max(due, now), self._on_timer, track)

    async def _report_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed:
            await asyncio.sleep(REPORT_INTERVAL)
            for track in self._tracks.values():
                track.send([track.core.receiver_report(loop.time())])

    # -- decoding -------------------------------------------------------------------------------

    async def _decode_loop(self) -> None:
        try:
            await self._decode_frames()
        finally:
            self._executor.shutdown(wait=False)

    async def _decode_frames(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            frame = await self._queue.get()
            if frame is None:
                return
            if self._queue.qsize() > MAX_DECODE_BACKLOG:
                self.decode_dropped += 1 + self._queue.qsize()
                while not self._queue.empty():
                    if self._queue.get_nowait() is None:
                        return
                self._need_keyframe = True
                continue
            if self._need_keyframe and not frame.keyframe:
                self.decode_dropped += 1
                continue
            if frame.data is None:
                self._decode_failed()
                continue
            if self._decoder is None:
                self._decoder = VideoDecoder(frame.codec)
            try:
                self.frames_decoded += await loop.run_in_executor(self._executor, self._decoder.decode, frame.data)
                self._need_keyframe = False
            except DecodeError as e:
                log.debug("decode error: %s", e)
                self._decode_failed()

    def _decode_failed(self) -> None:
        self.decode_errors += 1
        self._need_keyframe = True
        track = self._tracks.get("video")
        if track is not None and not self._closed:
            now = asyncio.get_running_loop().time()
            track.core.request_keyframe(now)
            self._drain(track, now)

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for track in self._tracks.values():
            if track.timer is not None:
                track.timer.cancel()
        self._close_transports()
        self._queue.put_nowait(None)  # the decoder finishes what is queued, then stops
        if self._tasks:
            self._tasks[0].cancel()  # the report loop; the decode loop ends at the None above

    async def wait_closed(self) -> None:
        self.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _close_transports(self) -> None:
        for track in self._tracks.values():
            if track.transport is not None:
                track.transport.close()

    # -- what the engine reports ----------------------------------------------------------------

    def stats(self) -> PlayerStats:
        s = PlayerStats(frames_decoded=self.frames_decoded, decode_errors=self.decode_errors)
        for kind, track in self._tracks.items():
            core = track.core
            s.packets_received += core.counters["packets"]
            s.packets_lost += core.lost()
            s.packets_duplicated += core.counters["duplicates"]
            s.nacks_sent += core.counters["nack_packets"]
            s.plis_sent += core.counters["plis"]
            if kind == "audio":
                s.audio_frames_received = core.frames_complete
            else:
                s.frames_received = core.frames_complete
                s.frames_dropped = core.frames_dropped
                s.keyframes_received = core.counters["keyframes"]
                s.latencies = list(core.latencies)
                s.video_codec = core.codec.value if core.codec is not None else None
                if core.first_keyframe_at is not None:
                    s.first_frame_time = core.first_keyframe_at - self.started_at
        return s
