"""A player track that expects a codec (an HTTP player's SDP named it before the stream was published)
is never given a publisher track of another codec: it stays detached, and the pair is reported once
(Router rules). A player that expects none takes whatever is published."""

from itertools import count

import pytest

from sfu.media.router import SHARED, CodecMismatch, Router, TrackSpec
from sfu.rtp.rtcp import Pli, serialize
from tests.media.rtp import fields, rtcp_rr, rtp

PUB = ("127.0.0.1", 5000)
A1, V1, V2, V3, V4 = (("127.0.0.1", 6000 + i) for i in range(5))
H264_IDR = bytes([0x65, 0x88, 0x84, 0x00, 0x33])  # a single NAL unit: an IDR slice
OPUS = b"\xfc\x01\x02"
H264_STREAM = (TrackSpec("audio", "opus", 111), TrackSpec("video", "H264", 102))


@pytest.fixture
def router():
    ids = count(0x1000)
    return Router(new_ssrc=lambda: next(ids))


def receivers(out):
    return sorted(addr for key, _, addr in out if key == SHARED)


def test_an_early_player_of_another_codec_stays_detached_and_is_reported_once(router):
    ssrcs, _ = router.add_player(1, "s1", "vp8", {"video": V1, "audio": A1}, codecs={"video": "VP8", "audio": "opus"})
    router.add_player(1, "s1", "h264", {"video": V2}, codecs={"video": "H264"})
    router.add_player(1, "s1", "any", {"video": V3})
    audio, video = router.add_publisher(1, "s1", H264_STREAM)
    assert router.take_codec_mismatches() == [CodecMismatch(1, "s1", "vp8", "video", "VP8", "H264")]
    assert router.take_codec_mismatches() == []

    out = router.on_datagram(video, rtp(1, 3000, 7, H264_IDR, pt=102), PUB, 0.0)
    assert receivers(out) == [V2, V3]
    out = router.on_datagram(audio, rtp(1, 960, 8, OPUS, pt=111), PUB, 0.0)
    assert receivers(out) == [A1]  # its audio is the codec it expects

    # a new address latched for the detached track starts nothing, and its PLI asks nothing of the publisher
    assert router.on_datagram(SHARED, rtcp_rr(ssrcs["video"]), V4, 0.1) == []
    pli = serialize([Pli(ssrcs["video"], ssrcs["video"])])
    router.on_datagram(SHARED, pli, V4, 0.2)
    assert router.counters["keyframe_requests_received"] == 0
    out = router.on_datagram(video, rtp(2, 6000, 7, H264_IDR, pt=102), PUB, 0.3)
    assert receivers(out) == [V2, V3]


def test_a_player_added_to_a_live_stream_of_another_codec_is_reported(router):
    (video,) = router.add_publisher(1, "s1", (TrackSpec("video", "VP8", 96),))
    router.on_datagram(video, rtp(1, 3000, 7), PUB, 0.0)
    _, out = router.add_player(1, "s1", "h264", {"video": V1}, codecs={"video": "H264"}, now=0.1)
    assert out == [] and router.take_codec_mismatches() == [CodecMismatch(1, "s1", "h264", "video", "H264", "VP8")]
    _, out = router.add_player(1, "s1", "vp8", {"video": V2}, codecs={"video": "VP8"}, now=0.1)
    assert receivers(out) == [V2]  # the cached keyframe, at once
    assert router.take_codec_mismatches() == []


def test_the_next_publisher_of_the_expected_codec_is_taken(router):
    router.add_player(1, "s1", "vp8", {"video": V1}, codecs={"video": "VP8"})
    router.add_publisher(1, "s1", H264_STREAM)
    assert len(router.take_codec_mismatches()) == 1
    router.end_stream(1, "s1")
    (video,) = router.add_publisher(1, "s1", (TrackSpec("video", "VP8", 96),))
    assert router.take_codec_mismatches() == []
    out = router.on_datagram(video, rtp(1, 3000, 7), PUB, 1.0)
    assert [(addr, fields(d)[:3]) for key, d, addr in out if key == SHARED] == [(V1, (96, 0, 3000))]
