"""The SDK's video encoder keeps its bitrate whatever time base the pictures come with.

A picture decoded from a file carries the file's time base (1/15360 in an MP4); PyAV rescales a
frame's pts from its own time base to the encoder's, so such pictures once looked 5.9x further
apart to libvpx, whose rate control then spent 5.9x the bits per frame.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from sfu.client.media.av_codecs import VideoEncoder
from sfu.media.codecs import Codec

FPS, SECONDS, BITRATE = 30, 3, 300_000


def pictures(time_base: Fraction | None) -> list[av.VideoFrame]:
    rng = np.random.default_rng(7)
    blocks = rng.integers(0, 256, (360 // 8, 320 // 16), dtype=np.uint8)  # Y 240 rows, U and V 60 each
    base = np.kron(blocks, np.ones((8, 16), dtype=np.uint8))
    out = []
    for i in range(FPS * SECONDS):
        img = np.roll(base, 3 * i, axis=1)  # moving detail: the encoder has work to do every frame
        frame = av.VideoFrame.from_ndarray(img, format="yuv420p")
        if time_base is not None:
            frame.time_base = time_base
            frame.pts = round(i / FPS / time_base)
        out.append(frame)
    return out


def encoded_bits(codec: Codec, time_base: Fraction | None) -> int:
    enc = VideoEncoder(codec, 320, 240, FPS, BITRATE, gop_frames=FPS)
    return 8 * sum(len(f.data) for p in pictures(time_base) for f in enc.encode(p))


@pytest.mark.parametrize("codec", [Codec.VP8, Codec.H264])
def test_pictures_from_a_file_are_encoded_at_the_configured_rate(codec: Codec) -> None:
    plain = encoded_bits(codec, None)
    from_file = encoded_bits(codec, Fraction(1, 15360))
    assert from_file == pytest.approx(plain, rel=0.1), (from_file, plain)
    assert from_file / SECONDS < 2 * BITRATE, from_file / SECONDS
