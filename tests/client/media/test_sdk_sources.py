"""Publisher sources: the test pattern, the tone, media files (looped on their own timeline)."""

from __future__ import annotations

import asyncio
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from sfu.client import EngineError, PlayerConfig, PublisherConfig, ResourceMode
from sfu.client.media.sources import FileAudio, FileVideo, TestPattern, Tone, open_sources
from tests.client.recording import login


def make_clip(path: Path, *, seconds: float = 1.0, fps: int = 10, audio: bool = True) -> Path:
    """A small MP4: each picture a flat grey level = 20 * its index; a 600 Hz tone."""
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = 160, 120, "yuv420p"
        a = out.add_stream("aac", rate=48000) if audio else None
        if a is not None:
            a.layout = "mono"
        for i in range(int(seconds * fps)):
            img = np.full((120, 160, 3), 20 * i % 256, np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            out.mux(v.encode(frame))
        out.mux(v.encode())
        if a is not None:
            samples = int(seconds * 48000)
            tone = (np.sin(2 * np.pi * 600 * np.arange(samples) / 48000) * 8000).astype(np.int16)
            for start in range(0, samples, 1024):
                chunk = tone[start:start + 1024]
                frame = av.AudioFrame.from_ndarray(chunk[None, :], format="s16", layout="mono")
                frame.sample_rate = 48000
                frame.pts = start
                frame.time_base = Fraction(1, 48000)
                out.mux(a.encode(frame))
            out.mux(a.encode())
    return path


def luma(frame: av.VideoFrame) -> int:
    return int(np.median(frame.to_ndarray(format="gray")))


def test_test_pattern_moves_and_counts() -> None:
    pattern = TestPattern(320, 180, 30)
    a, b = pattern.frame(0), pattern.frame(15)
    assert (a.width, a.height, a.format.name) == (320, 180, "yuv420p")
    ya, yb = a.to_ndarray()[:180], b.to_ndarray()[:180]
    assert not np.array_equal(ya[60:], yb[60:])  # the bar moved
    assert not np.array_equal(ya[:40, :120], yb[:40, :120])  # the counter changed
    assert np.array_equal(ya, pattern.frame(0).to_ndarray()[:180])  # a frame depends on its index only
    with pytest.raises(ValueError):
        TestPattern(321, 180, 30)


def test_tone_is_continuous_across_frames() -> None:
    tone = Tone()
    joined = np.concatenate([tone.frame(i).to_ndarray().reshape(-1) for i in range(3)])
    assert joined.shape == (2880,) and tone.frame(0).sample_rate == 48000
    t = np.arange(2880) / 48000
    assert np.abs(joined - np.sin(2 * np.pi * 440 * t) * 8000).max() <= 1


def test_file_video_follows_its_timeline_and_loops(tmp_path: Path) -> None:
    video = FileVideo(str(make_clip(tmp_path / "clip.mp4", audio=False)), 64, 48, fps=20)
    levels = [luma(video.frame(i)) for i in range(60)]  # 3 s at 20 fps of a 1 s, 10 fps file
    assert (video.frame(0).width, video.frame(0).height) == (64, 48)
    assert levels[0:2] == [levels[0]] * 2 and levels[2] > levels[0]  # each picture shown for 2 ticks
    assert levels[20:40] == levels[0:20] and levels[40:60] == levels[0:20]  # looped
    video.close()


def test_file_audio_loops_and_falls_back(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=0.5)
    audio = FileAudio(str(clip))
    frames = [audio.frame(i).to_ndarray().reshape(-1) for i in range(60)]  # 1.2 s from a 0.5 s file
    assert all(f.shape == (960,) for f in frames) and all(f.any() for f in frames)
    audio.close()
    silent = make_clip(tmp_path / "silent.mp4", audio=False)
    video, tone = open_sources(PublisherConfig(source=str(silent)))
    assert isinstance(video, FileVideo) and isinstance(tone, Tone)  # no audio in the file: the tone
    video.close()
    with pytest.raises(ValueError, match="cannot open"):
        open_sources(PublisherConfig(source=str(tmp_path / "missing.mp4")))


async def test_publishing_a_file(node, client, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4")
    viewer, _ = await client(node)
    host, _ = await client(node)
    await login(viewer, "viewer")
    await login(host, "host")
    with pytest.raises(EngineError) as bad:
        await host.start_publishing_stream("file", config=PublisherConfig(source=str(tmp_path / "missing.mp4")))
    assert bad.value.code == 1000036  # INVALID_ARGUMENT, before anything is published
    await viewer.start_playing_stream("file", PlayerConfig(ResourceMode.ONLY_RTC, decode=True))
    await host.start_publishing_stream("file", config=PublisherConfig(video_codec="H264", source=str(clip),
                                                                      width=320, height=240, fps=15))
    for _ in range(200):
        stats = viewer.get_player_stats("file")
        if stats.frames_decoded >= 10 and stats.audio_frames_received >= 20:
            break
        await asyncio.sleep(0.02)
    assert stats.frames_decoded >= 10 and stats.audio_frames_received >= 20 and stats.video_codec == "H264"
