"""One player per mode behind a downlink capped at 60 % of the stream's rate (with a 500 ms bottleneck
queue), beside players on clean links, on a virtual clock: bench/l3_qoe.py's `downlink_cap`.

Real parts throughout (the SDK's publisher and player cores, which report every second as the SDK
does, the node's Router with its defaults, seeded NetEms); synthetic VP8 and Opus of the bench's
sizes. What the node owns: the capped player's media never lags the others' by more than its
latency budget (after its path has been measured, the bench's warm-up), the others get every
frame, and the capped player does not make the publisher send keyframes more often than its GOP.
"""

from __future__ import annotations

import random

from sfu.client.media.player_track import PlayerTrack as SdkPlayer
from sfu.client.media.publisher_track import PublisherTrack as SdkPublisher
from sfu.media.budget import LatencyBudget
from sfu.media.codecs import Codec
from sfu.media.netem import NetEm
from sfu.media.router import SHARED, Router, TrackSpec

WALL = 1.8e9
FPS, GOP, SECONDS, WARMUP = 30, 60, 20, 3.0
CAP_BPS = 500_000  # the stream is ~850 kbit/s of video and ~40 of audio
BUDGET = LatencyBudget().budget_s


def vp8_frame(rng: random.Random, key: bool) -> bytes:
    size = rng.randint(9000, 12000) if key else rng.randint(2800, 3800)
    if key:
        return bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0x68, 0x01]) + rng.randbytes(size)
    return bytes([0x11, 0x02, 0x00]) + rng.randbytes(size)


def run(seed: int):
    rng = random.Random(seed)
    router = Router()
    video, audio = router.add_publisher(1, "s1", (TrackSpec("video", "VP8", 96), TrackSpec("audio", "opus", 111)))
    pub_addr = {video: ("127.0.0.1", 5000), audio: ("127.0.0.1", 5002)}
    publishers = {video: SdkPublisher(Codec.VP8, 96, ssrc=0x1234), audio: SdkPublisher(Codec.OPUS, 111, ssrc=0x5678)}
    players, links = {}, {}
    for name, l3, capped in (("l3", True, False), ("l3-capped", True, True), ("rtc", False, False),
                             ("rtc-capped", False, True)):
        port = 6000 + 10 * len(links)
        addrs = {"video": ("127.0.0.1", port), "audio": ("127.0.0.1", port + 1)}
        ssrcs, _ = router.add_player(1, "s1", name, addrs, l3=l3)
        down = (NetEm(seed + port, rate_bps=CAP_BPS, queue_limit_bytes=CAP_BPS // 8 // 2, delay=0.02) if capped
                else NetEm(seed + port))
        links[name] = (down, NetEm(seed + port + 1, delay=0.02 if capped else 0.0))
        for kind in ("video", "audio"):
            players[addrs[kind]] = (name, SdkPlayer(kind, ssrcs[kind], Codec.VP8 if kind == "video" else None))
    got = {name: {} for name in links}  # name -> RTP timestamp -> completed at
    sent: dict[int, float] = {}
    keyframes = 0
    now, video_no, audio_no, next_rr, next_sr, end = 0.0, 0, 0, 0.5, 0.3, SECONDS + 1.0
    while True:
        times = [video_no / FPS if video_no < FPS * SECONDS else None, audio_no / 50 if audio_no < 50 * SECONDS else None,
                 next_rr, next_sr, router.next_timer(),
                 *(t for d, u in links.values() for t in (d.next_timer(), u.next_timer())),
                 *(p.next_timer() for _, p in players.values())]
        now = min(t for t in times if t is not None)
        if now >= end:
            break
        outs = []
        if video_no / FPS <= now and video_no < FPS * SECONDS:
            key = video_no % GOP == 0 or publishers[video].take_keyframe_request()  # as the SDK's encoder
            keyframes += key
            sent[video_no * 3000] = now
            for packet in publishers[video].send_frame(vp8_frame(rng, key), video_no * 3000, now):
                outs += router.on_datagram(video, packet, pub_addr[video], now)
            video_no += 1
        if audio_no / 50 <= now and audio_no < 50 * SECONDS:
            for packet in publishers[audio].send_frame(rng.randbytes(80), audio_no * 960, now):
                outs += router.on_datagram(audio, packet, pub_addr[audio], now)
            audio_no += 1
        if next_sr <= now:  # the publisher's sender reports: the node translates them for each player
            for tid, core in publishers.items():
                outs += router.on_datagram(tid, core.sender_report(now, WALL + now), pub_addr[tid], now)
            next_sr = now + 1.0
        if next_rr <= now:  # each player track reports once a second, as the SDK's MediaPlayer does
            for addr, (name, core) in players.items():
                links[name][1].send(addr[1].to_bytes(2, "big") + core.receiver_report(now), now)
            next_rr = now + 1.0
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
                if key_ in publishers:  # feedback to the publisher (clean uplink): answers at once
                    for answer in publishers[key_].on_rtcp(data, now):
                        more += router.on_datagram(key_, answer, pub_addr[key_], now)
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


def test_a_capped_player_stays_within_its_budget_and_the_others_do_not_suffer() -> None:
    router, got, sent, keyframes, _ = run(1)
    window = [ts for ts, t in sent.items() if t >= WARMUP]
    for mode in ("l3", "rtc"):
        steady, capped = got[mode], got[f"{mode}-capped"]
        assert all(ts in steady for ts in window), mode  # the others get every frame
        behind = [capped[ts] - steady[ts] for ts in window if ts in capped]
        assert len(behind) >= (SECONDS - WARMUP) * FPS // GOP, (mode, len(behind))  # it gets a GOP's keyframe...
        assert max(behind) <= BUDGET, (mode, max(behind))  # ...never later than its budget allows
    (video,) = [t for t in router.tracks() if t.spec.kind == "video"]
    capped_paths = [p.path for p in video.players if p.path.congestion.estimate_bps < 1_000_000]
    assert len(capped_paths) == 2 and all(p.congestion.estimate_bps < CAP_BPS for p in capped_paths)
    assert all(p.budget.counters["resends_refused"] + p.budget.counters["resent"] > 0 for p in capped_paths)
    # the publisher's keyframes: its GOP's, the first players', and few more
    assert keyframes <= SECONDS * FPS // GOP + 3, (keyframes, video.requester.reasons)
