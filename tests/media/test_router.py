"""The Router core, sans-IO on a virtual clock: binding, latching, first frame, repair, L3 sync."""

from itertools import count

import pytest

from sfu.media.fastpath import EV_NONE
from sfu.media.router import DEFAULT_TRACKS, SHARED, Router, TrackSpec
from sfu.rtp.rtcp import Nack, Pli, parse_rtcp, serialize
from tests.media.rtp import VP8_DELTA, VP8_KEY, fields, rtcp_rr, rtp

PUB = ("127.0.0.1", 5000)
P1 = ("127.0.0.1", 6001)
P2 = ("127.0.0.1", 6002)
VIDEO_ONLY = (TrackSpec("video", "VP8", 96),)


@pytest.fixture
def router():
    ids = count(0x1000)
    return Router(new_ssrc=lambda: next(ids))


def media(out, dest=None):
    """(pt, seq, ts, ssrc) of the RTP datagrams in `out` sent from the shared socket (to `dest`)."""
    return [fields(d) for key, d, addr in out if key == SHARED and (dest is None or addr == dest)]


def run_timers(router, until):
    """Fire every timer up to `until`; returns all outputs."""
    out = []
    while (t := router.next_timer()) is not None and t <= until:
        out += router.on_timer(t)
    return out


def test_fan_out_rewrites_ssrc_per_player_and_keeps_the_rest(router):
    audio, video = router.add_publisher(1, "s1", DEFAULT_TRACKS)
    a, _ = router.add_player(1, "s1", "sa")
    b, _ = router.add_player(1, "s1", "sb")
    assert len({a["video"], a["audio"], b["video"], b["audio"]}) == 4
    assert router.on_datagram(SHARED, rtcp_rr(a["video"]), P1, 0.0) == []
    assert router.on_datagram(SHARED, rtcp_rr(b["video"]), P2, 0.0) == []
    pkt = rtp(100, 9000, 0xABCDEF, VP8_KEY, ext=b"\x51\x00\x01\x02\x03\x04\x05\x00")
    out = router.on_datagram(video, pkt, PUB, 1.0)
    assert [addr for _, _, addr in out] == [P1, P2]
    for (_, data, _), ssrc in zip(out, (a["video"], b["video"])):
        assert fields(data) == (96, 0, 9000, ssrc)
        assert data[12:] == pkt[12:]  # extension and payload untouched
    assert router.last_packet(1, "s1") == 1.0


def test_a_player_starts_at_a_keyframe(router):
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    router.add_player(1, "s1", "sa", {"video": P1})
    assert router.on_datagram(video, rtp(1, 100, 7, VP8_DELTA), PUB, 0.0) == []
    out = router.on_datagram(video, rtp(2, 200, 7, VP8_KEY), PUB, 0.01)
    out += router.on_datagram(video, rtp(3, 300, 7, VP8_DELTA), PUB, 0.02)
    assert [(seq, ts) for _, seq, ts, _ in media(out)] == [(0, 200), (1, 300)]


def test_late_joiner_gets_the_cached_gop_at_once(router):
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    router.on_datagram(video, rtp(10, 1000, 7, VP8_KEY), PUB, 0.0)
    for i in range(1, 5):
        router.on_datagram(video, rtp(10 + i, 1000 + 3000 * i, 7, VP8_DELTA), PUB, 0.033 * i)
    _, out = router.add_player(1, "s1", "late", {"video": P1}, now=0.2)
    assert [(seq, ts) for _, seq, ts, _ in media(out)] == [(i, 1000 + 3000 * i) for i in range(5)]
    live = router.on_datagram(video, rtp(15, 16000, 7, VP8_DELTA), PUB, 0.21)
    assert [(seq, ts) for _, seq, ts, _ in media(live)] == [(5, 16000)]


def test_player_without_a_keyframe_asks_the_publisher_once(router):
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    router.on_datagram(video, rtp(1, 100, 7, VP8_DELTA), PUB, 0.0)
    for name in ("a", "b", "c"):
        router.add_player(1, "s1", name, {"video": P1}, now=0.1)
    out = run_timers(router, 0.2)
    plis = [p for key, d, addr in out if key == video for p in parse_rtcp(d) if isinstance(p, Pli)]
    assert len(plis) == 1 and plis[0].media_ssrc == 7
    assert [addr for key, _, addr in out if key == video] == [PUB]


def test_players_nack_is_answered_from_the_history(router):
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    ssrcs, _ = router.add_player(1, "s1", "sa", {"video": P1})
    for i in range(5):
        router.on_datagram(video, rtp(100 + i, 1000 * i, 7, VP8_KEY if i == 0 else VP8_DELTA), PUB, 0.01 * i)
    nack = serialize([Nack(ssrcs["video"], ssrcs["video"], [2, 3])])
    out = router.on_datagram(SHARED, nack, P1, 0.1)
    assert [(seq, ts) for _, seq, ts, _ in media(out)] == [(2, 2000), (3, 3000)]
    assert router.counters["nacks_received"] == 1
    assert router.on_datagram(SHARED, nack, P1, 0.11) == []  # not again within one RTT


def test_gaps_from_the_publisher_are_nacked_upstream(router):
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    router.on_datagram(video, rtp(100, 0, 7, VP8_KEY), PUB, 0.0)
    router.on_datagram(video, rtp(103, 9000, 7, VP8_DELTA), PUB, 0.01)
    out = run_timers(router, 0.05)
    nacks = [p for key, d, addr in out if key == video for p in parse_rtcp(d) if isinstance(p, Nack)]
    assert nacks and nacks[0].lost == [101, 102] and nacks[0].media_ssrc == 7


def test_l3_players_get_each_frame_at_the_same_instant_after_the_target_delay(router):
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    router.add_player(1, "s1", "l3a", {"video": P1}, l3=True)
    router.add_player(1, "s1", "l3b", {"video": P2}, l3=True)
    router.add_player(1, "s1", "rtc", {"video": ("127.0.0.1", 6003)})
    sent_at = {}
    releases = []
    for i in range(10):
        now = i / 30
        out = router.on_datagram(video, rtp(i, 3000 * i, 7, VP8_KEY if i == 0 else VP8_DELTA), PUB, now)
        assert len(media(out)) == 1  # only the RTC player, at once
        sent_at[3000 * i] = now
        while (t := router.next_timer()) is not None and t <= now + 1 / 30 - 1e-9:
            for key, d, addr in router.on_timer(t):
                if addr != ("127.0.0.1", 6003):
                    releases.append((fields(d)[2], addr, t))
    by_ts = {}
    for ts, addr, t in releases:
        by_ts.setdefault(ts, {})[addr] = t
    assert by_ts, "nothing released"
    for ts, times in by_ts.items():
        assert set(times) == {P1, P2}
        assert times[P1] == times[P2]  # in sync
        assert 0.02 <= times[P1] - sent_at[ts] <= 0.5  # the target delay, within its bounds


def test_an_audio_player_goes_live_with_the_packet_that_starts_it(router):
    """Audio has no keyframe to wait for: a player waiting for the stream (or for a new publisher)
    gets the first packet (it used to get the second: the first only started it)."""
    router.add_player(1, "s1", "rtc", {"audio": P1})
    router.add_player(1, "s1", "l3", {"audio": P2}, l3=True)
    (audio,) = router.add_publisher(1, "s1", (TrackSpec("audio", "opus", 111),))
    out = router.on_datagram(audio, rtp(500, 48000, 7, b"\xfc\x01", pt=111), PUB, 0.0)
    assert [(addr, fields(d)[:3]) for key, d, addr in out if key == SHARED] == [(P1, (111, 0, 48000))]
    out = run_timers(router, 1.0)
    assert [(addr, fields(d)[:3]) for key, d, addr in out if key == SHARED] == [(P2, (111, 0, 48000))]


def test_l3_repairs_a_loss_before_release(router):
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    router.add_player(1, "s1", "l3", {"video": P1}, l3=True)
    got = []
    for i in range(6):
        now = i / 30
        if i != 2:
            router.on_datagram(video, rtp(i, 3000 * i, 7, VP8_KEY if i == 0 else VP8_DELTA), PUB, now)
        if i == 3:  # the retransmission of 2 arrives 40 ms after it was due
            router.on_datagram(video, rtp(2, 6000, 7, VP8_DELTA), PUB, now + 0.005)
        got += media(run_timers(router, now + 1 / 30 - 1e-9))
    got += media(run_timers(router, 2.0))
    assert [(seq, ts) for _, seq, ts, _ in got] == [(i, 3000 * i) for i in range(6)]


def test_unbound_source_unknown_ssrc_and_malformed_are_dropped_and_counted(router):
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    router.add_player(1, "s1", "sa", {"video": P1})
    assert len(router.on_datagram(video, rtp(1, 1, 0x77), PUB, 0.0)) == 1  # latches PUB
    assert router.on_datagram(video, rtp(2, 1, 0x77), ("127.0.0.1", 5999), 0.0) == []
    assert router.on_datagram(SHARED, rtp(2, 1, 0xDEAD), PUB, 0.0) == []
    assert router.on_datagram(video, b"\x40" + bytes(20), PUB, 0.0) == []  # version 1
    assert router.on_datagram(video, b"\x80\x60\x00", PUB, 0.0) == []  # truncated
    assert router.on_datagram(video, bytes([0x8F, 96]) + bytes(10), PUB, 0.0) == []  # 15 CSRCs past the end
    assert router.on_datagram(SHARED, bytes([0x80, 201, 0, 9]) + bytes(8), P1, 0.0) == []  # RTCP length past the end
    assert router.dropped == {"malformed": 4, "unknown_ssrc": 1, "unbound_source": 1}
    assert len(router.on_datagram(video, rtp(3, 2, 0x77), PUB, 0.0)) == 1  # the bound source still flows


def test_rtcp_from_the_bound_host(router):
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    router.on_datagram(video, rtp(1, 0, 1), PUB, 0.0)
    sr = bytes([0x80, 200, 0, 6]) + bytes(24)
    assert router.on_datagram(video, sr, PUB, 0.0) == []
    assert router.on_datagram(video, sr, ("127.0.0.1", 41234), 0.0) == []  # ffmpeg's separate RTCP socket
    assert router.dropped["unbound_source"] == 0
    router.on_datagram(video, sr, ("127.0.0.2", PUB[1]), 0.0)
    assert router.dropped["unbound_source"] == 1


def test_sequence_numbers_continue_across_a_publisher_restart(router):
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    router.add_player(1, "s1", "sa", {"video": P1})
    seqs = [media(router.on_datagram(video, rtp(q, q, 1), PUB, 0.0))[0][1] for q in (65534, 65535, 0)]
    assert seqs == [0, 1, 2]
    assert router.end_stream(1, "s1") == [video]
    assert router.on_datagram(video, rtp(1, 0, 1), PUB, 0.0) == []  # its port is gone
    (video2,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    assert video2 != video
    seqs = [media(router.on_datagram(video2, rtp(q, q, 2), ("127.0.0.1", 5555), 1.0))[0][1] for q in (777, 778)]
    assert seqs == [3, 4]


def test_removed_player_stops_and_frees_its_ssrc(router):
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    a, _ = router.add_player(1, "s1", "sa", {"video": P1})
    router.remove_player(1, "s1", "sa")
    assert router.on_datagram(video, rtp(1, 0, 1), PUB, 0.0) == []
    assert router.on_datagram(SHARED, rtcp_rr(a["video"]), P1, 0.0) == [] and router.dropped["unknown_ssrc"] == 1


def test_streams_are_per_app(router):
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    router.add_player(2, "s1", "sa", {"video": P1})  # same stream id, another AppID
    assert router.on_datagram(video, rtp(1, 0, 1), PUB, 0.0) == []


def test_track_rules(router):
    with pytest.raises(ValueError):
        router.add_publisher(1, "s1", (TrackSpec("video", "VP8", 96), TrackSpec("video", "VP8", 97)))
    router.add_publisher(1, "s1", VIDEO_ONLY)
    with pytest.raises(ValueError):
        router.add_publisher(1, "s1", VIDEO_ONLY)


def test_player_payload_type_mapping(router):
    (video,) = router.add_publisher(1, "s1", (TrackSpec("video", "H264", 102),))
    router.add_player(1, "s1", "sa", {"video": P1}, {"video": 96})
    router.add_player(1, "s1", "sb", {"video": P2})
    out = router.on_datagram(video, rtp(1, 0, 1, b"\x65idr", pt=102), PUB, 0.0)
    assert [f[0] for f in media(out)] == [96, 102]


def test_a_player_whose_path_cannot_keep_up_loses_video_not_audio_and_others_do_not_suffer(router):
    from sfu.rtp.rtcp import Remb

    audio, video = router.add_publisher(1, "s1", DEFAULT_TRACKS)
    slow, _ = router.add_player(1, "s1", "slow", {"video": P1, "audio": P1})
    router.add_player(1, "s1", "fast", {"video": P2, "audio": P2})
    router.on_datagram(SHARED, serialize([Remb(slow["video"], 150_000, [])]), P1, 0.0)  # the path says 150 kbit/s
    big = VP8_DELTA + bytes(1100)
    sent = {P1: {"audio": 0, "video": 0}, P2: {"audio": 0, "video": 0}}
    for i in range(300):  # 10 s of 30 fps video (~280 kbit/s) and 50 packets/s audio
        now = i / 30
        payload = VP8_KEY + bytes(1100) if i % 60 == 0 else big
        outs = router.on_datagram(video, rtp(i, 3000 * i, 7, payload), PUB, now)
        for k in range(2):
            outs += router.on_datagram(audio, rtp(5000 + 2 * i + k, 960 * (2 * i + k), 8, b"\x01opus", pt=111),
                                       PUB, now + k * 0.02)
        for _, d, addr in outs:
            sent[addr]["video" if fields(d)[0] == 96 else "audio"] += 1
    assert sent[P2] == {"audio": 600, "video": 300}  # the other player gets everything
    assert sent[P1]["audio"] == 600  # audio is dropped last: here, never
    assert 0 < sent[P1]["video"] < 200  # video was cut to fit the path


def test_timestamps_continue_across_a_publisher_restart(router):
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    router.add_player(1, "s1", "sa", {"video": P1})
    first = [media(router.on_datagram(video, rtp(q, 5000 + 3000 * q, 1), PUB, q / 30))[0][2] for q in range(3)]
    assert first == [5000, 8000, 11000]  # the first publisher's timestamps are kept as they are
    router.end_stream(1, "s1")
    (video2,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    out = router.on_datagram(video2, rtp(9, 777_000, 2), ("127.0.0.1", 5555), 2 / 30 + 0.5)
    assert media(out)[0][2] == 11000 + round(0.5 * 90000)  # continues by the wall time that passed


def test_sender_reports_are_translated_for_each_player(router):
    from sfu.rtp.rtcp import SenderReport

    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    ssrcs, _ = router.add_player(1, "s1", "sa", {"video": P1})
    router.on_datagram(video, rtp(100, 90_000, 7, VP8_KEY), PUB, 10.0)
    ntp = 0xE000_0000_8000_0000  # some NTP time, .5 s fraction
    router.on_datagram(video, serialize([SenderReport(7, ntp, 90_000, 1, 1000)]), PUB, 10.0)
    out = run_timers(router, 11.0)
    reports = [p for key, d, addr in out if addr == P1 for p in parse_rtcp(d) if isinstance(p, SenderReport)]
    assert len(reports) == 2  # at once when the first SR is known, then every second
    last = reports[-1]
    assert last.ssrc == ssrcs["video"] and last.packet_count == 1
    assert last.ntp_time == ntp + 2**32  # one second later
    assert last.rtp_time == 90_000 + 90_000  # the player's numbering kept the publisher's, one second on


def test_a_player_that_never_reports_on_its_path_is_not_limited(router):
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    router.add_player(1, "s1", "silent", {"video": P1})  # e.g. ffmpeg: no RTCP reaches the node
    big = VP8_DELTA + bytes(1100)
    sent = 0
    for i in range(300):  # ~10 Mbit/s: above the estimate a player starts from
        for k in range(30):
            sent += len(media(router.on_datagram(video, rtp(30 * i + k, 3000 * i, 7, VP8_KEY if i == k == 0 else big,
                                                           marker=k == 29), PUB, i / 30)))
    assert sent == 9000


def test_counters_include_what_the_fast_path_counted_since_python_last_ran(router):
    """The event loop's reader leaves the fast path's counts in it (no Python per packet): whoever
    reads the Router's counters, its totals or a track gets them folded in, and ending the stream
    keeps them."""
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    router.add_player(1, "s1", "sa", {"video": P1})
    assert len(router.on_datagram(video, rtp(1, 100, 7, VP8_KEY), PUB, 0.0)) == 1
    fast = router.track(video).fast
    for seq in (2, 3, 4):  # what a Reader does: straight into the fast path, no Router call
        assert fast.ingest(rtp(seq, 200, 7, VP8_DELTA), PUB, 0.01 * seq) == EV_NONE
    fast.ingest(b"\x40" + bytes(20), PUB, 0.05)  # malformed
    fast.take_out()
    assert router.counters["packets_in"] == 5 and router.counters["packets_out"] == 4
    assert router.dropped["malformed"] == 1
    assert router.tracks()[0].counters["packets"] == 4
    fast.ingest(rtp(5, 200, 7, VP8_DELTA), PUB, 0.06)
    router.end_stream(1, "s1")  # the track is gone: its last count stays in the Router's
    assert router.counters["packets_in"] == 6


def test_each_read_of_a_drain_is_timed_afresh(router):
    """Python's work between the reads of one wake-up takes time: with a clock, a read after an
    event is timed when it happens (a datagram's arrival is never the wake-up's stale time)."""
    import select
    import socket

    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    router.add_player(1, "s1", "sa", {"video": P1})
    router.track(video).fast.output = None  # sans-IO sends: nothing leaves
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as pub:
        rx.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        pub.sendto(rtp(1, 100, 7, VP8_KEY), rx.getsockname())
        assert select.select([rx], [], [], 5)[0]
        sent = []

        def send(out) -> None:  # Python's work on the keyframe: meanwhile the next datagram comes
            if not sent:
                sent.append(pub.sendto(rtp(2, 200, 7, VP8_DELTA), rx.getsockname()))
                assert select.select([rx], [], [], 5)[0]

        reads = iter([20.0, 30.0, 40.0])
        router.pump(video, rx, 10.0, send, clock=lambda: next(reads))
        assert sent and router.track(video).fast.last_ext == 2
        assert router.last_packet(1, "s1") == 20.0  # read after the keyframe's work: timed then


def test_sender_reports_to_many_players_are_spread_over_the_second(router):
    """A round of SRs to 100 players is cut into ticks of at most SENDER_REPORT_SLICE, spread over
    the interval: each player gets one a second, the node never stops for all of them at once."""
    from sfu.media.track import SENDER_REPORT_SLICE
    from sfu.rtp.rtcp import SenderReport

    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    players = {}
    for i in range(100):
        ssrcs, _ = router.add_player(1, "s1", f"s{i}", {"video": ("127.0.0.1", 7000 + i)})
        players[ssrcs["video"]] = i
    router.on_datagram(video, rtp(100, 90_000, 7, VP8_KEY), PUB, 10.0)
    for k in range(1, 30):  # the fast path forwards these: the SRs' counts must include them
        router.on_datagram(video, rtp(100 + k, 90_000 + 3000 * k, 7, VP8_DELTA), PUB, 10.0 + k / 30)
    router.on_datagram(video, serialize([SenderReport(7, 0xE000_0000_0000_0000, 90_000, 1, 1000)]), PUB, 10.0)
    ticks = []
    while (t := router.next_timer()) is not None and t < 12.0:
        reports = [p for _, d, _ in router.on_timer(t) for p in parse_rtcp(d) if isinstance(p, SenderReport)]
        if reports:
            ticks.append((t, reports))
    first_round = [(t, r) for t, r in ticks if t < 11.0]
    assert len(first_round) == 4 and all(len(r) <= SENDER_REPORT_SLICE for _, r in first_round)
    assert sorted(players[r.ssrc] for _, rs in first_round for r in rs) == list(range(100))  # each once
    times = [t for t, _ in first_round]
    assert times[0] == 10.0 and all(0.2 <= b - a <= 0.3 for a, b in zip(times, times[1:]))
    assert {r.packet_count for _, rs in first_round[1:] for r in rs} == {30}  # the fast path's sends counted
    second_round = [t for t, _ in ticks if t >= 11.0]
    assert second_round[0] == 11.0 and len(second_round) == 4  # one second after the round began


def test_a_packet_older_than_the_whole_history_is_dropped(router):
    """A wild jump back (more than the retransmission ring behind the newest) is never stored: the
    track ignores it instead of failing, and the stream goes on."""
    (video,) = router.add_publisher(1, "s1", VIDEO_ONLY)
    router.add_player(1, "s1", "sa", {"video": P1})
    router.add_player(1, "s1", "sb", {"video": P2}, l3=True)
    assert media(router.on_datagram(video, rtp(10_000, 100, 7, VP8_KEY), PUB, 0.0), P1)
    assert router.on_datagram(video, rtp(10_000 - 5000, 50, 7, VP8_DELTA), PUB, 0.01) == []
    assert media(router.on_datagram(video, rtp(10_001, 200, 7, VP8_DELTA), PUB, 0.02), P1)
