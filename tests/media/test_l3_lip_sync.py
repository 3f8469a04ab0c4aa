"""An L3 stream's audio and video leave the node together (jitter buffer rules 4 and 5: the stream's
target, and a repaired frame released in its slot).

SDK publisher (VP8 ~850 kbit/s and Opus) behind bench/l3_qoe.py's `uplink_burst_loss` link (20 %
Gilbert-Elliott loss in bursts of 5 on average, 20 ms each way), the node's Router, one L3 player;
a virtual clock. Video needs repair round trips (its frames span packets and bursts take several),
so its own target delay grows to ~240 ms; audio's stays ~110 ms (one packet a frame, nothing to
wait for). Released each with its own target, audio left ~130 ms before the video captured with
it: a player had to buffer that much audio to play in lip sync, or play out of sync. And a repaired
frame went out with the next one on time: after a burst, up to the burst's length (100 ms) behind
what was captured with it. With the stream's target and the slot, what was captured together is
released together.
"""

from __future__ import annotations

import random
from statistics import median

from sfu.client.media.publisher_track import PublisherTrack as SdkPublisher
from sfu.media.codecs import Codec
from sfu.media.netem import NetEm
from sfu.media.router import SHARED, Router, TrackSpec
from tests.media.paths import WALL, vp8_frame
from tests.media.rtp import fields

FPS, AUDIO_RATE, GOP, SECONDS, WARMUP = 30, 50, 60, 20, 3.0
PLAYER = {"video": ("127.0.0.1", 6000), "audio": ("127.0.0.1", 6001)}


def run(seed: int) -> tuple[Router, dict[str, dict[int, float]], dict[str, set[int]]]:
    rng = random.Random(seed)
    router = Router()
    video, audio = router.add_publisher(1, "s1", (TrackSpec("video", "VP8", 96), TrackSpec("audio", "opus", 111)))
    kind_of = {video: "video", audio: "audio"}
    pub_addr = {video: ("127.0.0.1", 5000), audio: ("127.0.0.1", 5002)}
    publishers = {video: SdkPublisher(Codec.VP8, 96, ssrc=0x1234), audio: SdkPublisher(Codec.OPUS, 111, ssrc=0x5678)}
    up, back = NetEm(seed, burst_loss=(0.05, 0.2), delay=0.020), NetEm(seed + 1, delay=0.020)
    router.add_player(1, "s1", "l3", PLAYER, l3=True)
    by_addr = {addr: kind for kind, addr in PLAYER.items()}
    released: dict[str, dict[int, float]] = {"video": {}, "audio": {}}  # kind -> RTP timestamp -> first sent at
    sent: dict[str, set[int]] = {"video": set(), "audio": set()}
    now, video_no, audio_no, next_sr, end = 0.0, 0, 0, 0.3, SECONDS + 1.0
    while True:
        times = [video_no / FPS if video_no < FPS * SECONDS else None,
                 audio_no / AUDIO_RATE if audio_no < AUDIO_RATE * SECONDS else None,
                 up.next_timer(), back.next_timer(), next_sr, router.next_timer()]
        now = min(t for t in times if t is not None)
        if now >= end:
            break
        outs = []
        if video_no / FPS <= now and video_no < FPS * SECONDS:
            key = video_no % GOP == 0 or publishers[video].take_keyframe_request()  # as the SDK's encoder
            sent["video"].add(video_no * 3000)
            for packet in publishers[video].send_frame(vp8_frame(rng, key), video_no * 3000, now):
                up.send(bytes([video]) + packet, now)
            video_no += 1
        if audio_no / AUDIO_RATE <= now and audio_no < AUDIO_RATE * SECONDS:
            sent["audio"].add(audio_no * 960)
            for packet in publishers[audio].send_frame(rng.randbytes(80), audio_no * 960, now):
                up.send(bytes([audio]) + packet, now)
            audio_no += 1
        if next_sr <= now:
            for tid, core in publishers.items():
                outs += router.on_datagram(tid, core.sender_report(now, WALL + now), pub_addr[tid], now)
            next_sr = now + 1.0
        for data in up.poll(now):
            outs += router.on_datagram(data[0], data[1:], pub_addr[data[0]], now)
        for data in back.poll(now):
            for answer in publishers[data[0]].on_rtcp(data[1:], now):
                up.send(data[:1] + answer, now)
        if (t := router.next_timer()) is not None and t <= now:
            outs += router.on_timer(now)
        for key_, data, addr in outs:
            if key_ in publishers:  # NACKs and PLIs, over the publisher's link
                back.send(bytes([key_]) + data, now)
            elif key_ == SHARED and addr in by_addr and data[1] & 0x7F in (96, 111):  # media, not RTCP
                released[by_addr[addr]].setdefault(fields(data)[2], now)
        assert kind_of  # (both tracks ran)
    return router, released, sent


def test_audio_and_video_captured_together_leave_together():
    router, released, sent = run(7)
    # the player's timestamps are the publisher's (one publisher: its numbering is kept)
    assert released["video"].keys() <= sent["video"] and released["audio"].keys() <= sent["audio"]
    video_track, audio_track = sorted(router.tracks(), key=lambda t: t.spec.kind != "video")
    assert video_track.jitter.target_delay > audio_track.jitter.target_delay + 0.08  # their own targets differ
    assert audio_track.jitter.release_target == video_track.jitter.release_target  # one stream target
    skews = []  # video's release - audio's, for each 100 ms instant both were captured at
    for k in range(int(WARMUP * 10), SECONDS * 10):
        v, a = released["video"].get(9000 * k), released["audio"].get(4800 * k)
        if v is not None and a is not None:
            skews.append(v - a)
    assert len(skews) > 0.8 * (SECONDS - WARMUP) * 10  # most of them were released, both kinds
    assert abs(median(skews)) <= 0.002
    # a frame repaired late (rule 6) leaves after the instant it was due: a few, not more
    assert sum(abs(s) <= 0.003 for s in skews) >= 0.95 * len(skews)
