"""The first media path end to end on loopback: signalling hands out SSRCs and the port, RTP flows.

The node parses every datagram with the compiled parser (sfu.rtp.header) and rewrites per player.
"""

import asyncio
import socket

from sfu.rtp import header
from tests.media.rtp import fields, rtcp_rr, rtp


class Udp(asyncio.DatagramProtocol):
    def __init__(self):
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data, addr):
        self.queue.put_nowait(data)


async def udp():
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(Udp, local_addr=("127.0.0.1", 0), family=socket.AF_INET)
    return transport, proto


async def until_ts(proto: Udp, ts: int) -> None:
    """Read until the packet with this RTP timestamp (each test packet has its own)."""
    while fields(await asyncio.wait_for(proto.queue.get(), 5))[2] != ts:
        pass


async def test_publisher_to_two_players(node, connect):
    assert header.IMPLEMENTATION in ("c", "py")
    host = await connect(node)
    await host.login("room1", "host")
    pub = (await host.request("publish", stream_id="s1"))["result"]
    media = pub["media"]
    assert media["host"] == "127.0.0.1"
    assert [(t["kind"], t["codec"], t["payload_type"]) for t in media["tracks"]] == [("audio", "opus", 111),
                                                                                 ("video", "VP8", 96)]
    video = (media["host"], media["tracks"][1]["port"])
    assert 40000 <= video[1] <= 40999

    players = []
    for name in ("v1", "v2"):
        c = await connect(node)
        await c.login("room1", name)
        r = (await c.request("play", stream_id="s1", resource_mode=3))["result"]
        t, proto = await udp()
        players.append(([x["ssrc"] for x in r["media"]["tracks"] if x["kind"] == "video"][0], t, proto))
        dest = (r["media"]["host"], r["media"]["port"])
    pt, _ = await udp()
    # a player latches its address with a receiver report; wait until the node forwards to both
    for ssrc, t, _ in players:
        t.sendto(rtcp_rr(ssrc), dest)
    seq = 1000
    got = {ssrc: [] for ssrc, _, _ in players}
    for _ in range(50):  # UDP: the receiver reports or a first packet may be lost; bounded retries
        if all(got.values()):
            break
        pt.sendto(rtp(seq, 90 * seq, 0x1234), video)  # each test packet is a whole VP8 keyframe
        seq += 1
        for ssrc, _, proto in players:
            try:
                got[ssrc].append(await asyncio.wait_for(proto.queue.get(), 0.2))
            except TimeoutError:
                for s2, t2, _ in players:
                    t2.sendto(rtcp_rr(s2), dest)
    assert all(got.values())
    for ssrc, _, proto in players:
        f = fields(got[ssrc][0])
        assert f[0] == 96 and f[3] == ssrc

    # a stranger using the publisher's SSRC from another port is dropped and counted
    stranger, _ = await udp()
    before = node.router.dropped["unbound_source"]
    stranger.sendto(rtp(seq, 90 * seq, 0x1234), video)
    pt.sendto(rtp(seq, 90 * seq, 0x1234), video)  # the real publisher's next packet arrives after it
    for ssrc, _, proto in players:  # once the real packet is through, the stranger's was handled
        await until_ts(proto, 90 * seq)
    assert node.router.dropped["unbound_source"] == before + 1

    # malformed packets are dropped and counted; the node keeps forwarding
    malformed_before = node.router.dropped["malformed"]
    for junk in (b"\x00" * 3, b"\x40" + bytes(20), bytes([0x8F, 96]) + bytes(10), bytes([0xA0, 96]) + bytes(10) + b"\x00"):
        pt.sendto(junk, video)
    pt.sendto(rtp(seq + 1, 90 * (seq + 1), 0x1234), video)
    for ssrc, _, proto in players:
        await until_ts(proto, 90 * (seq + 1))
    assert node.router.dropped["malformed"] == malformed_before + 4

    for t in [pt, stranger] + [t for _, t, _ in players]:
        t.close()


async def test_stopping_a_stream_closes_its_ports_and_a_new_publish_flows(node, connect):
    host, viewer = await connect(node), await connect(node)
    await host.login("room1", "host")
    await viewer.login("room1", "viewer")
    tracks = [{"kind": "video", "codec": "H264", "payload_type": 102}]
    media = (await host.request("publish", stream_id="s1", tracks=tracks))["result"]["media"]
    assert [(t["kind"], t["codec"]) for t in media["tracks"]] == [("video", "H264")]
    old = (media["host"], media["tracks"][0]["port"])
    play = (await viewer.request("play", stream_id="s1", resource_mode=3))["result"]["media"]
    vssrc = [t["ssrc"] for t in play["tracks"] if t["kind"] == "video"][0]
    vt, vproto = await udp()
    vt.sendto(rtcp_rr(vssrc), (play["host"], play["port"]))
    assert (await host.request("stop_publish", stream_id="s1"))["type"] == "reply"
    again = (await host.request("publish", stream_id="s1", tracks=tracks))["result"]["media"]
    new = (again["host"], again["tracks"][0]["port"])
    pt, _ = await udp()
    pt.sendto(rtp(50, 0, 9, b"\x65h264-idr", pt=102), new)  # a single-NAL IDR: a keyframe
    data = await asyncio.wait_for(vproto.queue.get(), 5)
    assert fields(data)[0] == 102 and fields(data)[3] == vssrc
    if new != old:  # the old port was closed (unless it was reused for the new track)
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(old)  # free again: binding it succeeds
        probe.close()
    pt.close()
    vt.close()


async def test_bad_tracks_are_refused_before_the_stream_is_announced(node, connect):
    host, watcher = await connect(node), await connect(node)
    await watcher.login("room1", "watcher")
    await host.login("room1", "host")
    for tracks, fragment in [([], "non-empty"), ([{"kind": "video", "codec": "VP8", "payload_type": 5}], "96-127"),
                             ([{"kind": "screen", "codec": "VP8", "payload_type": 96}], "kind"),
                             ([{"kind": "audio", "codec": "VP8", "payload_type": 96}], "codec"),
                             ("x", "must be a list")]:
        r = await host.request("publish", stream_id="s1", tracks=tracks)
        assert r["type"] == "error" and fragment in r["message"], r
    assert node.service.room_streams(1234567890, "room1") == []
    assert (await watcher.request("heartbeat"))["type"] == "reply"
    assert not [e for e in watcher.events if e["event"] == "room_stream_update"]


async def test_the_node_nacks_a_gap_and_asks_for_a_keyframe_on_the_publishers_socket(node, connect):
    from sfu.rtp.rtcp import Nack, Pli, parse_rtcp

    from tests.media.rtp import VP8_DELTA

    host, viewer = await connect(node), await connect(node)
    await host.login("room1", "host")
    await viewer.login("room1", "viewer")
    media = (await host.request("publish", stream_id="s1"))["result"]["media"]
    video = (media["host"], media["tracks"][1]["port"])
    play = (await viewer.request("play", stream_id="s1", resource_mode=3))["result"]["media"]
    assert [(t["kind"], t.get("codec")) for t in play["tracks"]] == [("audio", "opus"), ("video", "VP8")]
    pub, pproto = await udp()
    pub.sendto(rtp(100, 0, 0x77, VP8_DELTA), video)  # no keyframe yet: a player will want one
    vssrc = [t["ssrc"] for t in play["tracks"] if t["kind"] == "video"][0]
    vt, _ = await udp()
    vt.sendto(rtcp_rr(vssrc), (play["host"], play["port"]))  # the player starts, with no keyframe cached
    pub.sendto(rtp(103, 9000, 0x77, VP8_DELTA), video)  # 101 and 102 are lost
    got_nack = got_pli = False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while not (got_nack and got_pli) and loop.time() < deadline:
        data = await asyncio.wait_for(pproto.queue.get(), max(0.01, deadline - loop.time()))
        for packet in parse_rtcp(data):
            if isinstance(packet, Nack) and packet.media_ssrc == 0x77:
                assert packet.lost[:2] == [101, 102]
                got_nack = True
            if isinstance(packet, Pli) and packet.media_ssrc == 0x77:
                got_pli = True
    assert got_nack and got_pli
    pub.close()
    vt.close()
