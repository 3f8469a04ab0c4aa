"""Encoders and the decoder, on PyAV (FFmpeg): libvpx VP8, libx264 H.264, libopus; FFmpeg's decoders.

No clock, no socket: frames in, frames out. The IO shell runs video encoding and decoding on a
worker thread (PyAV releases the GIL inside FFmpeg), one thread per track, so one object is
only ever used by one thread at a time.

- ``VideoEncoder`` is tuned for real time: no lookahead, no B-frames, a keyframe every
  ``gop_frames`` frames, and ``encode(frame, force_keyframe=True)`` makes that frame a keyframe
  (``frame.pict_type = PictureType.I``: libvpx turns it into VPX_EFLAG_FORCE_KF, libx264 with
  ``forced-idr`` into an IDR). H.264 comes out in Annex B with SPS/PPS in band
  (``repeat-headers``); constrained-baseline-like (``ultrafast``, ``zerolatency``).
- ``AudioEncoder``: Opus, 48 kHz mono, 20 ms frames (960 samples).
- ``VideoDecoder.decode(data)`` returns how many pictures one frame gave (0 while the decoder
  fills up); ``DecodeError`` when FFmpeg rejects the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av
from av.video.frame import PictureType

from sfu.media.codecs import Codec

__all__ = ["AudioEncoder", "DecodeError", "EncodedFrame", "VideoDecoder", "VideoEncoder"]

_ENCODERS = {Codec.VP8: "libvpx", Codec.H264: "libx264"}
_DECODERS = {Codec.VP8: "vp8", Codec.H264: "h264"}


class DecodeError(Exception):
    pass


@dataclass(slots=True)
class EncodedFrame:
    data: bytes
    keyframe: bool


class VideoEncoder:
    def __init__(self, codec: Codec, width: int, height: int, fps: float, bitrate: int, gop_frames: int) -> None:
        if codec not in _ENCODERS:
            raise ValueError(f"the SDK encodes VP8 or H264 video, not {codec.value}")
        ctx = av.CodecContext.create(_ENCODERS[codec], "w")
        ctx.width, ctx.height = width, height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = Fraction(1, 90000)
        ctx.framerate = Fraction(fps).limit_denominator(1001)
        ctx.bit_rate = bitrate
        ctx.gop_size = gop_frames
        ctx.thread_count = 1
        ctx.max_b_frames = 0
        if codec is Codec.VP8:
            ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "auto-alt-ref": "0",
                           "error-resilient": "1"}
        else:
            ctx.options = {"preset": "ultrafast", "tune": "zerolatency", "forced-idr": "1",
                           "x264-params": f"keyint={gop_frames}:min-keyint={gop_frames}:scenecut=0:repeat-headers=1"}
        ctx.open()
        self.codec = codec
        self._ctx = ctx
        self._step = 90000 / fps
        self._count = 0

    def encode(self, frame: av.VideoFrame, force_keyframe: bool = False) -> list[EncodedFrame]:
        frame.pts = round(self._count * self._step)
        frame.time_base = self._ctx.time_base  # a decoded file's frame keeps its own: PyAV would rescale pts
        self._count += 1
        frame.pict_type = PictureType.I if force_keyframe else PictureType.NONE
        return [EncodedFrame(bytes(p), bool(p.is_keyframe)) for p in self._ctx.encode(frame)]


class AudioEncoder:
    SAMPLES = 960  # 20 ms at 48 kHz

    def __init__(self, bitrate: int = 32_000) -> None:
        ctx = av.CodecContext.create("libopus", "w")
        ctx.sample_rate = 48000
        ctx.format = "s16"
        ctx.layout = "mono"
        ctx.bit_rate = bitrate
        ctx.time_base = Fraction(1, 48000)
        ctx.options = {"application": "lowdelay"}
        ctx.open()
        self._ctx = ctx
        self._count = 0

    def encode(self, frame: av.AudioFrame) -> list[bytes]:
        frame.pts = self._count * self.SAMPLES
        self._count += 1
        return [bytes(p) for p in self._ctx.encode(frame)]


class VideoDecoder:
    def __init__(self, codec: Codec) -> None:
        if codec not in _DECODERS:
            raise ValueError(f"the SDK decodes VP8 or H264 video, not {codec.value}")
        ctx = av.CodecContext.create(_DECODERS[codec], "r")
        ctx.thread_type = "SLICE"  # frame threading would hold pictures back
        ctx.open()
        self._ctx = ctx

    def decode(self, data: bytes) -> int:
        try:
            return len(self._ctx.decode(av.Packet(data)))
        except av.error.FFmpegError as e:
            raise DecodeError(str(e)) from e
