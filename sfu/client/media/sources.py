"""What a publisher sends: a synthetic test pattern and tone, or a media file, looped.

Sources are asked for frame ``index`` of a schedule at ``fps`` (video) or 50 per second (audio,
20 ms of 48 kHz mono); they never read a clock.

- ``TestPattern``: YUV 4:2:0 frames built with numpy: a fixed colour background, a white bar
  moving across it once every two seconds, and the frame index in large digits at the top left.
- ``Tone``: a 440 Hz sine, continuous across frames.
- ``FileVideo`` / ``FileAudio``: decoded with PyAV. Video frame ``index`` is the file's picture
  shown at ``index / fps`` seconds (the file's own timeline, so its frame rate does not matter),
  scaled to the configured size; audio is resampled to 48 kHz mono. At the end the file starts
  over. Each opens its own demuxer, so the two can run on different threads.
- ``open_sources(config)`` builds the pair for a ``PublisherConfig``; ``ValueError`` if the file
  cannot be opened or has no video (a file without audio gets the tone).
"""

from __future__ import annotations

import math

import av
import numpy as np

__all__ = ["FileAudio", "FileVideo", "TestPattern", "Tone", "open_sources"]

SAMPLE_RATE = 48000
SAMPLES = 960

_DIGITS = [
    "111101101101111", "010110010010111", "111001111100111", "111001111001111", "101101111001001",
    "111100111001111", "111100111101111", "111001001001001", "111101111101111", "111101111001111",
]
_GLYPHS = [np.array([int(c) for c in d], dtype=bool).reshape(5, 3) for d in _DIGITS]


class TestPattern:
    __test__ = False  # not a pytest class

    def __init__(self, width: int, height: int, fps: float) -> None:
        if width % 2 or height % 2 or width < 64 or height < 32:
            raise ValueError(f"video size must be even and at least 64x32, got {width}x{height}")
        self.width, self.height, self.fps = width, height, fps
        y = np.empty((height, width), np.uint8)
        y[:] = np.linspace(40, 200, width, dtype=np.uint8)[None, :]
        u = np.full((height // 2, width // 2), 90, np.uint8)
        v = np.full((height // 2, width // 2), 160, np.uint8)
        u[: height // 4] = 160  # two colour bands
        v[: height // 4] = 90
        self._base = np.concatenate([y, u.reshape(-1, width), v.reshape(-1, width)])
        self._bar = max(2, width // 32) & ~1
        self._scale = max(2, height // 40)

    def frame(self, index: int) -> av.VideoFrame:
        img = self._base.copy()
        h, w = self.height, self.width
        speed = w / (2 * self.fps)  # across in two seconds
        x = int(index * speed) % w
        img[:h, x:x + self._bar] = 235
        s = self._scale
        text = f"{index % 1_000_000:06d}"
        box_w, box_h = (4 * len(text) + 1) * s, 7 * s
        img[:box_h, :box_w] = 16
        for i, ch in enumerate(text):
            glyph = np.kron(_GLYPHS[int(ch)], np.ones((s, s), dtype=bool))
            x0 = (1 + 4 * i) * s
            img[s:6 * s, x0:x0 + 3 * s][glyph] = 235
        return av.VideoFrame.from_ndarray(img, format="yuv420p")


class Tone:
    def __init__(self, frequency: float = 440.0, amplitude: int = 8000) -> None:
        self.frequency, self.amplitude = frequency, amplitude

    def frame(self, index: int) -> av.AudioFrame:
        t = (np.arange(SAMPLES) + index * SAMPLES) / SAMPLE_RATE
        samples = (np.sin(2 * math.pi * self.frequency * t) * self.amplitude).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        return frame


class FileVideo:
    _MAX_DECODES = 300  # per call: a bound, whatever the file

    def __init__(self, path: str, width: int, height: int, fps: float) -> None:
        self.width, self.height, self.fps = width, height, fps
        try:
            self._container = av.open(path)
        except (av.error.FFmpegError, OSError) as e:
            raise ValueError(f"cannot open {path!r}: {e}") from None
        if not self._container.streams.video:
            self._container.close()
            raise ValueError(f"{path!r} has no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self._frames = self._container.decode(self._stream)
        self._offset = 0.0  # seconds of the file already played in earlier loops
        self._current = self._read()
        if self._current is None:
            self._container.close()
            raise ValueError(f"{path!r} has no decodable video frame")
        self._next = self._read()

    def _time(self, frame: av.VideoFrame) -> float:
        return float(frame.time) if frame.time is not None else 0.0

    def _read(self) -> av.VideoFrame | None:
        try:
            return next(self._frames)
        except StopIteration:
            return None
        except av.error.FFmpegError:
            return None

    def frame(self, index: int) -> av.VideoFrame:
        t = index / self.fps
        for _ in range(self._MAX_DECODES):
            if self._next is None:  # end of file: start over after the last picture's duration
                self._offset += self._time(self._current) + 1 / (float(self._stream.average_rate or self.fps))
                self._container.seek(0)
                self._frames = self._container.decode(self._stream)
                self._next = self._read()
                if self._next is None:
                    break
                self._current, self._next = self._next, self._read()
                continue
            if self._offset + self._time(self._next) > t:
                break
            self._current, self._next = self._next, self._read()
        return self._current.reformat(self.width, self.height, "yuv420p")

    def close(self) -> None:
        self._container.close()


class FileAudio:
    _MAX_DECODES = 100

    def __init__(self, path: str) -> None:
        self._container = av.open(path)
        if not self._container.streams.audio:
            self._container.close()
            raise ValueError(f"{path!r} has no audio stream")
        self._stream = self._container.streams.audio[0]
        self._frames = self._container.decode(self._stream)
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self._buffer = np.zeros(0, np.int16)

    def _more(self) -> bool:
        try:
            frame = next(self._frames)
        except (StopIteration, av.error.FFmpegError):
            self._container.seek(0)
            self._frames = self._container.decode(self._stream)
            return False
        for out in self._resampler.resample(frame):
            self._buffer = np.concatenate([self._buffer, out.to_ndarray().reshape(-1)])
        return True

    def frame(self, index: int) -> av.AudioFrame:
        misses = 0
        for _ in range(self._MAX_DECODES):
            if len(self._buffer) >= SAMPLES or misses > 1:
                break
            misses = 0 if self._more() else misses + 1
        chunk = self._buffer[:SAMPLES]
        self._buffer = self._buffer[SAMPLES:]
        if len(chunk) < SAMPLES:  # nothing decodable: silence
            chunk = np.concatenate([chunk, np.zeros(SAMPLES - len(chunk), np.int16)])
        frame = av.AudioFrame.from_ndarray(chunk[None, :], format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        return frame

    def close(self) -> None:
        self._container.close()


def open_sources(config) -> tuple[object | None, object | None]:
    """(video source, audio source) for a PublisherConfig; None where that track is off."""
    video = audio = None
    try:
        if config.video:
            video = (FileVideo(config.source, config.width, config.height, config.fps) if config.source
                     else TestPattern(config.width, config.height, config.fps))
        if config.audio:
            audio = Tone()
            if config.source:
                try:
                    audio = FileAudio(config.source)
                except (ValueError, av.error.FFmpegError, OSError):
                    pass
    except Exception:
        for s in (video, audio):
            if hasattr(s, "close"):
                s.close()
        raise
    return video, audio
