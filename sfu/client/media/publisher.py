"""MediaPublisher: the IO shell that sends a publisher's tracks to the node over RTP/UDP.

One UDP socket per track, sending to the track's port from the publish reply (`media.tracks[i]`)
with its payload type (or where ``config.media_route`` sends it instead, e.g. a network emulator in
front of the node); RTCP feedback arriving on that socket goes to the track's core
(``PublisherTrack``), and what it returns (retransmissions) is sent at once. Everything
per-packet lives in the cores; this file only moves datagrams and keeps time.

- Pacing by the event loop's clock: frame ``n`` of a track is due at ``start + n / rate`` (video
  ``fps``, audio 50/s). A frame that is due late is sent late; when a whole interval or more has
  passed the missed frames are skipped (counted) rather than sent in a burst, so delay never
  accumulates. RTP timestamps follow the schedule (``n * clock_rate / rate``), so they advance
  with real time across skips.
- Capture time: the wallclock (``time.time()``) when the picture is produced, written into every
  video packet as abs-capture-time.
- Video is produced and encoded on one worker thread (PyAV releases the GIL), so the loop stays
  free for feedback and audio; a keyframe requested by PLI/FIR is forced on the next frame that
  starts encoding after the request.
- RTCP SR + SDES for each track every second.
- Datagrams from other hosts than the one a track sends to are ignored. ``close()`` stops everything at once
  (synchronous, idempotent); ``wait_closed()`` waits for the worker thread to finish its frame
  and release the encoder and the source.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

from sfu.media.codecs import Codec
from sfu.rtp.header import is_rtcp
from sfu.rtp.rtcp import ntp_from_unix

from ..types import PublisherConfig, PublisherStats
from .av_codecs import AudioEncoder, VideoEncoder
from .publisher_track import PublisherTrack
from .sources import open_sources
from .udp import REPORT_INTERVAL, UdpProtocol, guard, local_address_for, media_host, resolve, route

__all__ = ["MediaPublisher", "PAYLOAD_TYPES"]

PAYLOAD_TYPES = {"opus": 111, "VP8": 96, "H264": 102}
AUDIO_RATE = 50  # frames per second (20 ms)


class _Track:
    def __init__(self, kind: str, core: PublisherTrack, remote: tuple[str, int]) -> None:
        self.kind = kind
        self.core = core
        self.remote = remote
        self.transport: asyncio.DatagramTransport | None = None

    def send(self, packets: list[bytes]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            for p in packets:
                self.transport.sendto(p, self.remote)


class MediaPublisher:
    """Build it (validates the config, opens the source and encoders), then `await start(media)`."""

    def __init__(self, config: PublisherConfig) -> None:
        codec = Codec.from_name(config.video_codec) if config.video else None
        if codec is not None and codec not in (Codec.VP8, Codec.H264):
            raise ValueError(f"video_codec must be 'VP8' or 'H264', got {config.video_codec!r}")
        if not config.video and not config.audio:
            raise ValueError("a publisher needs a video or an audio track")
        if config.video and not (0 < config.fps <= 120 and config.gop_seconds > 0 and config.video_bitrate > 0):
            raise ValueError("need 0 < fps <= 120, gop_seconds > 0 and video_bitrate > 0")
        self.config = config
        self.video_codec = codec
        self._video_source, self._audio_source = open_sources(config)
        try:
            self._video_encoder = (VideoEncoder(codec, config.width, config.height, config.fps, config.video_bitrate,
                                                max(1, round(config.gop_seconds * config.fps))) if codec else None)
            self._audio_encoder = AudioEncoder(config.audio_bitrate) if config.audio else None
        except Exception:
            self._release()
            raise
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sfu-video-encode")
        self._tracks: dict[str, _Track] = {}
        self._tasks: list[asyncio.Task] = []
        self._closed = False
        self._released: asyncio.Future | None = None
        self._host = ""
        self.frames_skipped = 0
        self.foreign = 0

    def tracks_request(self) -> list[dict]:
        """The publish request's `tracks` field."""
        tracks = []
        if self.config.audio:
            tracks.append({"kind": "audio", "codec": "opus", "payload_type": PAYLOAD_TYPES["opus"]})
        if self.video_codec is not None:
            tracks.append({"kind": "video", "codec": self.video_codec.value,
                           "payload_type": PAYLOAD_TYPES[self.video_codec.value]})
        return tracks

    async def start(self, media: dict, server_url: str) -> None:
        """Open a socket per track of the publish reply's `media` and start sending."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        host = self._host = await resolve(media_host(str(media.get("host") or ""), server_url))
        for t in media.get("tracks") or []:
            kind = t.get("kind")
            if kind == "video" and self._video_encoder is not None:
                codec = self.video_codec
            elif kind == "audio" and self._audio_encoder is not None:
                codec = Codec.OPUS
            else:
                continue
            core = PublisherTrack(codec, int(t.get("payload_type") or PAYLOAD_TYPES[codec.value]),
                                  secrets.randbits(32) or 1, secrets.randbits(16))
            track = _Track(kind, core, await route(self.config.media_route, kind, (host, int(t["port"]))))
            local, family = local_address_for(track.remote[0])
            track.transport, _ = await loop.create_datagram_endpoint(
                lambda tr=track: UdpProtocol(lambda data, addr: self._on_datagram(tr, data, addr)),
                local_addr=(local, 0), family=family)
            self._tracks[kind] = track
            if self._closed:  # closed while we were opening
                self._close_transports()
                return
        if "video" in self._tracks:
            self._tasks.append(loop.create_task(guard(self._video_loop, self._tracks["video"])))
        if "audio" in self._tracks:
            self._tasks.append(loop.create_task(guard(self._audio_loop, self._tracks["audio"])))
        self._tasks.append(loop.create_task(guard(self._report_loop)))

    # -- the loops ------------------------------------------------------------------------------

    def _on_datagram(self, track: _Track, data: bytes, addr) -> None:
        if addr[0] != track.remote[0] or not is_rtcp(data):
            self.foreign += 1
            return
        loop = asyncio.get_running_loop()
        track.send(track.core.on_rtcp(data, loop.time(), time.time()))

    def _produce_video(self, index: int, force: bool) -> tuple[float, list]:
        """On the worker thread: the picture for `index`, its capture time, encoded."""
        picture = self._video_source.frame(index)
        captured = time.time()
        return captured, self._video_encoder.encode(picture, force)

    async def _ticks(self, interval: float):
        """Frame indexes on a fixed schedule by the event loop's clock, with how many were skipped:
        a tick that falls a whole interval behind is skipped, never sent in a burst."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        n = 0
        while not self._closed:
            due = start + n * interval
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            behind = max(0, int((loop.time() - due) / interval))
            n += behind
            yield n, behind
            n += 1

    async def _video_loop(self, track: _Track) -> None:
        loop = asyncio.get_running_loop()
        fps = self.config.fps
        base = secrets.randbits(32)
        async for n, skipped in self._ticks(1 / fps):
            self.frames_skipped += skipped
            force = track.core.take_keyframe_request()
            captured, encoded = await loop.run_in_executor(self._executor, self._produce_video, n, force)
            if self._closed:
                break
            timestamp = base + round(n * 90000 / fps)
            now = loop.time()
            for frame in encoded:
                track.send(track.core.send_frame(frame.data, timestamp, now, ntp_from_unix(captured)))

    async def _audio_loop(self, track: _Track) -> None:
        loop = asyncio.get_running_loop()
        base = secrets.randbits(32)
        async for n, _ in self._ticks(1 / AUDIO_RATE):
            timestamp = base + n * (48000 // AUDIO_RATE)
            for data in self._audio_encoder.encode(self._audio_source.frame(n)):
                track.send(track.core.send_frame(data, timestamp, loop.time()))

    async def _report_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed:
            await asyncio.sleep(REPORT_INTERVAL)
            for track in self._tracks.values():
                sr = track.core.sender_report(loop.time(), time.time())
                if sr is not None:
                    track.send([sr])

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        self._close_transports()
        try:
            loop = asyncio.get_running_loop()
            self._released = asyncio.wrap_future(self._executor.submit(self._release), loop=loop)
        except RuntimeError:  # no loop (interpreter shutdown): release on the worker anyway
            self._executor.submit(self._release)
        self._executor.shutdown(wait=False)

    async def wait_closed(self) -> None:
        self.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._released is not None:
            await asyncio.shield(self._released)

    def _close_transports(self) -> None:
        for track in self._tracks.values():
            if track.transport is not None:
                track.transport.close()

    def _release(self) -> None:
        for source in (self._video_source, self._audio_source):
            close = getattr(source, "close", None)
            if close is not None:
                close()
        self._video_encoder = self._audio_encoder = None

    # -- what the engine reports ----------------------------------------------------------------

    def stats(self) -> PublisherStats:
        s = PublisherStats(frames_skipped=self.frames_skipped)
        for kind, track in self._tracks.items():
            c = track.core.counters
            if kind == "video":
                s.frames_sent, s.keyframes_sent = c["frames"], c["keyframes"]
            else:
                s.audio_frames_sent = c["frames"]
            s.packets_sent += c["packets"] + c["resent"]
            s.bytes_sent += c["octets"]
            s.nacks_received += c["nack_packets"]
            s.packets_retransmitted += c["resent"]
            s.keyframe_requests += c["keyframe_requests"]
            sockname = track.transport.get_extra_info("sockname") if track.transport is not None else None
            if sockname:
                s.local_addresses[kind] = tuple(sockname[:2])
        return s

