"""A virtual-clock world for player-path tests: an SDK publisher (VP8 ~850 kbit/s + Opus) behind its own
link, the node's Router, and four SDK players (L3 and RTC, each twice: "<mode>" on a clean link and
"<mode>-capped" on a downlink capped at 500 kbit/s with a 500 ms queue when `capped`), every player
track reporting once a second as the SDK's MediaPlayer does. Real parts throughout; only the clock
is virtual and the frames synthetic."""

from __future__ import annotations

import random

from sfu.client.media.player_track import PlayerTrack as SdkPlayer
from sfu.client.media.publisher_track import PublisherTrack as SdkPublisher
from sfu.media.codecs import Codec
from sfu.media.netem import NetEm
from sfu.media.router import SHARED, Router, TrackSpec

WALL = 1.8e9
FPS, GOP, SECONDS, WARMUP = 30, 60, 20, 3.0
CAP_BPS = 500_000  # the stream is ~850 kbit/s of video and ~40 of audio


def vp8_frame(rng: random.Random, key: bool) -> bytes:
    size = rng.randint(9000, 12000) if key else rng.randint(2800, 3800)
    if key:
        return bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0x68, 0x01]) + rng.randbytes(size)
    return bytes([0x11, 0x02, 0x00]) + rng.randbytes(size)


def run(seed: int, *, capped: bool = True, uplink: dict | None = None, uncap_at: float | None = None,
        seconds: int = SECONDS):
    """`uncap_at`: the capped downlinks take any rate from then on; `seconds` of media are sent."""
    rng = random.Random(seed)
    router = Router()
    video, audio = router.add_publisher(1, "s1", (TrackSpec("video", "VP8", 96), TrackSpec("audio", "opus", 111)))
    pub_addr = {video: ("127.0.0.1", 5000), audio: ("127.0.0.1", 5002)}
    publishers = {video: SdkPublisher(Codec.VP8, 96, ssrc=0x1234), audio: SdkPublisher(Codec.OPUS, 111, ssrc=0x5678)}
    players, links = {}, {}
    pub_up, pub_back = NetEm(seed, **(uplink or {})), NetEm(seed + 1)  # the publisher's link
    for name, l3 in (("l3", True), ("l3-capped", True), ("rtc", False), ("rtc-capped", False)):
        port = 6000 + 10 * len(links)
        addrs = {"video": ("127.0.0.1", port), "audio": ("127.0.0.1", port + 1)}
        ssrcs, _ = router.add_player(1, "s1", name, addrs, l3=l3)
        limited = capped and name.endswith("-capped")
        down = (NetEm(seed + port, rate_bps=CAP_BPS, queue_limit_bytes=CAP_BPS // 8 // 2, delay=0.02) if limited
                else NetEm(seed + port))
        links[name] = (down, NetEm(seed + port + 1, delay=0.02 if limited else 0.0))
        for kind in ("video", "audio"):
            players[addrs[kind]] = (name, SdkPlayer(kind, ssrcs[kind], Codec.VP8 if kind == "video" else None))
    got = {name: {} for name in links}  # name -> RTP timestamp -> completed at
    sent: dict[int, float] = {}
    keyframes = 0
    now, video_no, audio_no, next_rr, next_sr, end = 0.0, 0, 0, 0.5, 0.3, seconds + 1.0
    while True:
        times = [video_no / FPS if video_no < FPS * seconds else None, audio_no / 50 if audio_no < 50 * seconds else None,
                 uncap_at,
                 pub_up.next_timer(), pub_back.next_timer(), next_rr, next_sr, router.next_timer(),
                 *(t for d, u in links.values() for t in (d.next_timer(), u.next_timer())),
                 *(p.next_timer() for _, p in players.values())]
        now = min(t for t in times if t is not None)
        if now >= end:
            break
        outs = []
        if uncap_at is not None and uncap_at <= now:
            for down, _ in links.values():
                down.set_rate(None)
            uncap_at = None
        if video_no / FPS <= now and video_no < FPS * seconds:
            key = video_no % GOP == 0 or publishers[video].take_keyframe_request()  # as the SDK's encoder
            keyframes += key
            sent[video_no * 3000] = now
            for packet in publishers[video].send_frame(vp8_frame(rng, key), video_no * 3000, now):
                pub_up.send(bytes([video]) + packet, now)
            video_no += 1
        if audio_no / 50 <= now and audio_no < 50 * seconds:
            for packet in publishers[audio].send_frame(rng.randbytes(80), audio_no * 960, now):
                pub_up.send(bytes([audio]) + packet, now)
            audio_no += 1
        if next_sr <= now:  # the publisher's sender reports: the node translates them for each player
            for tid, core in publishers.items():
                outs += router.on_datagram(tid, core.sender_report(now, WALL + now), pub_addr[tid], now)
            next_sr = now + 1.0
        if next_rr <= now:  # each player track reports once a second, as the SDK's MediaPlayer does
            for addr, (name, core) in players.items():
                links[name][1].send(addr[1].to_bytes(2, "big") + core.receiver_report(now), now)
            next_rr = now + 1.0
        for data in pub_up.poll(now):
            outs += router.on_datagram(data[0], data[1:], pub_addr[data[0]], now)
        for data in pub_back.poll(now):
            for answer in publishers[data[0]].on_rtcp(data[1:], now):
                pub_up.send(data[:1] + answer, now)
        if (t := router.next_timer()) is not None and t <= now:
            outs += router.on_timer(now)
        for _, core in players.values():
            if (t := core.next_timer()) is not None and t <= now:
                core.poll(now, WALL + now)
        for down, up in links.values():  # players -> node
            for data in up.poll(now):
                outs += router.on_datagram(SHARED, data[2:], ("127.0.0.1", int.from_bytes(data[:2], "big")), now)
        while outs:
            more = []
            for key_, data, addr in outs:
                if key_ in publishers:  # feedback to the publisher, over its link
                    pub_back.send(bytes([key_]) + data, now)
                else:
                    links[players[addr][0]][0].send(addr[1].to_bytes(2, "big") + data, now)
            outs = more
        for down, _ in links.values():  # node -> players
            for data in down.poll(now):
                players[("127.0.0.1", int.from_bytes(data[:2], "big"))][1].on_datagram(data[2:], now, WALL + now)
        for addr, (name, core) in players.items():
            for rtcp in core.take_rtcp():
                links[name][1].send(addr[1].to_bytes(2, "big") + rtcp, now)
            for f in core.take_frames():
                if f.kind == "video":
                    got[name][f.timestamp] = f.completed_at
    return router, got, sent, keyframes, links
