"""SDK publisher → real node → SDK player on loopback, and the publisher's RTCP handling on real sockets."""

from __future__ import annotations

import asyncio
import socket

import pytest

from sfu.client import PlayerConfig, PlayerState, PublisherConfig, ResourceMode
from sfu.client.media.publisher import MediaPublisher
from sfu.media.codecs import Codec, inspect_payload
from sfu.rtp.header import is_rtcp, parse_rtp
from sfu.rtp.rtcp import Nack, Pli, serialize
from tests.client.recording import login


async def until(predicate, timeout: float = 5.0, step: float = 0.01) -> None:
    for _ in range(int(timeout / step)):
        if predicate():
            return
        await asyncio.sleep(step)
    raise AssertionError("condition not met in time")


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_publisher_to_player_in_rtc_mode(node, client, codec: str) -> None:
    viewer, rec = await client(node)
    host, _ = await client(node)
    await login(viewer, "viewer")
    await login(host, "host")
    await viewer.start_playing_stream("live", PlayerConfig(ResourceMode.ONLY_RTC, decode=True))
    await host.start_publishing_stream("live", config=PublisherConfig(video_codec=codec))
    await rec.wait("player", stream_id="live", state=PlayerState.PLAYING)  # with the first frame
    await asyncio.sleep(3.0)
    sent = host.get_publisher_stats()
    await host.stop_publishing_stream()
    await asyncio.sleep(0.3)  # what is in flight arrives
    await viewer.stop_playing_stream("live")
    stats = viewer.get_player_stats("live")  # the last stats of a stopped player

    assert sent.frames_sent >= 80 and sent.keyframes_sent >= 1
    assert stats.video_codec == codec
    assert stats.frames_received >= 0.95 * sent.frames_sent, (stats, sent)
    assert stats.frames_decoded >= 0.95 * sent.frames_sent, (stats, sent)
    assert stats.frames_dropped == 0 and stats.decode_errors == 0
    assert stats.latencies and len(stats.latencies) == stats.frames_received
    assert all(0 <= x < 1.0 for x in stats.latencies), max(stats.latencies)
    assert stats.first_frame_time is not None and 0 < stats.first_frame_time < 1.0
    assert stats.audio_frames_received >= 0.9 * sent.audio_frames_sent > 0
    assert stats.packets_received > 0 and stats.packets_lost == 0
    await rec.wait("player", stream_id="live", state=PlayerState.NO_PLAY)
    assert rec.states("player", "live") == [PlayerState.PLAY_REQUESTING, PlayerState.PLAYING,
                                            PlayerState.PLAY_REQUESTING, PlayerState.NO_PLAY]


async def test_pli_on_the_publisher_socket_brings_a_keyframe_to_the_player(node, client) -> None:
    viewer, _ = await client(node)
    host, _ = await client(node)
    await login(viewer, "viewer")
    await login(host, "host")
    await viewer.start_playing_stream("live", PlayerConfig(ResourceMode.ONLY_RTC))
    await host.start_publishing_stream("live", config=PublisherConfig(gop_seconds=100, audio=False))
    await until(lambda: viewer.get_player_stats("live").frames_received >= 5)
    assert viewer.get_player_stats("live").keyframes_received == 1
    video = host.get_publisher_stats().local_addresses["video"]
    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    raw.bind(("127.0.0.1", 0))
    try:
        raw.sendto(serialize([Pli(1, 0)]), video)
        await until(lambda: viewer.get_player_stats("live").keyframes_received == 2, timeout=2.0)
    finally:
        raw.close()
    sent = host.get_publisher_stats()
    assert sent.keyframe_requests == 1 and sent.keyframes_sent == 2


class Sink(asyncio.DatagramProtocol):
    """Stands in for the node's track port: records RTP (with arrival order) and RTCP."""

    def __init__(self) -> None:
        self.rtp: list[bytes] = []
        self.rtcp: list[bytes] = []
        self.source = None
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data, addr) -> None:
        self.source = addr
        (self.rtcp if is_rtcp(data) else self.rtp).append(data)


async def test_publisher_answers_nack_and_pli_on_its_socket() -> None:
    loop = asyncio.get_running_loop()
    transport, sink = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    publisher = MediaPublisher(PublisherConfig(audio=False, gop_seconds=100, width=320, height=180))
    try:
        await publisher.start({"host": "127.0.0.1", "tracks": [
            {"kind": "video", "codec": "VP8", "payload_type": 96, "port": port}]}, "ws://127.0.0.1:1/ws")
        await until(lambda: sum(parse_rtp(p).marker for p in sink.rtp) >= 5)

        # NACK: the publisher resends the very packets asked for
        original = sink.rtp[2]
        seq = parse_rtp(original).sequence_number
        count = len(sink.rtp)
        transport.sendto(serialize([Nack(1, parse_rtp(original).ssrc, [seq])]), sink.source)
        await until(lambda: any(p == original for p in sink.rtp[count:]), timeout=1.0)
        assert publisher.stats().packets_retransmitted == 1 and publisher.stats().nacks_received == 1

        # PLI: the next frame to start encoding is a keyframe (one may be in the encoder already)
        mark = len(sink.rtp)
        transport.sendto(serialize([Pli(1, 0)]), sink.source)
        await until(lambda: sum(parse_rtp(p).marker for p in sink.rtp[mark:]) >= 3, timeout=2.0)
        starts = []
        for p in sink.rtp[mark:]:
            h = parse_rtp(p)
            info = inspect_payload(Codec.VP8, p[h.header_length:])
            if info.frame_start and p not in sink.rtp[:mark]:
                starts.append(info.keyframe)
        assert True in starts[:2] and starts.count(True) == 1, starts
        # and every sender report went out on the same socket
        assert sink.rtcp == [] or all(r[1] == 200 for r in sink.rtcp)
    finally:
        await publisher.wait_closed()
        transport.close()


def port_is_free(addr: tuple[str, int]) -> bool:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind(addr)
        return True
    except OSError:
        return False
    finally:
        probe.close()


@pytest.mark.parametrize("how", ["stop", "logout", "destroy"])
async def test_media_stops_with_the_publisher_and_the_session(node, client, how: str) -> None:
    from sfu.client import Engine

    host, rec = await client(node)
    await login(host, "host")
    await host.start_publishing_stream("live", config=PublisherConfig(width=160, height=96))
    await host.start_playing_stream("live", PlayerConfig(ResourceMode.ONLY_RTC))
    await until(lambda: host.get_player_stats("live").frames_received >= 3)  # it plays its own stream
    addresses = list(host.get_publisher_stats().local_addresses.values())
    assert len(addresses) == 2 and not any(port_is_free(a) for a in addresses)
    if how == "stop":
        await host.stop_publishing_stream()
        await host.stop_playing_stream("live")
    elif how == "logout":
        await host.logout_room()
    else:
        await Engine.destroy(host)
    await until(lambda: all(port_is_free(a) for a in addresses), timeout=1.0)  # nothing can be sent from them
    stats = host.get_player_stats("live")  # the player's last stats stay readable
    assert stats.frames_received >= 3
