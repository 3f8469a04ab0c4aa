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


async def until_seq(proto: Udp, seq: int) -> None:
    while fields(await asyncio.wait_for(proto.queue.get(), 5))[1] != seq:
        pass


async def test_publisher_to_two_players(node, connect):
    assert header.IMPLEMENTATION in ("c", "py")
    host = await connect(node)
    await host.login("room1", "host")
    pub = (await host.request("publish", stream_id="s1"))["result"]
    media = pub["media"]
    assert media["host"] == "127.0.0.1" and 40000 <= media["port"] <= 40999
    dest = (media["host"], media["port"])

    players = []
    for name in ("v1", "v2"):
        c = await connect(node)
        await c.login("room1", name)
        r = (await c.request("play", stream_id="s1", resource_mode=3))["result"]
        t, proto = await udp()
        players.append((r["media"]["ssrc"], t, proto))
        assert r["media"]["port"] == media["port"]
    pt, _ = await udp()
    # a player latches its address with a receiver report; wait until the node forwards to both
    for ssrc, t, _ in players:
        t.sendto(rtcp_rr(ssrc), dest)
    seq = 1000
    got = {ssrc: [] for ssrc, _, _ in players}
    while any(not g for g in got.values()):
        pt.sendto(rtp(seq, 90 * seq, media["ssrc"]), dest)
        seq += 1
        for ssrc, _, proto in players:
            try:
                got[ssrc].append(await asyncio.wait_for(proto.queue.get(), 0.2))
            except TimeoutError:
                for s2, t2, _ in players:
                    t2.sendto(rtcp_rr(s2), dest)
    for ssrc, _, proto in players:
        f = fields(got[ssrc][0])
        assert f[0] == 96 and f[3] == ssrc

    # a stranger using the publisher's SSRC from another port is dropped and counted
    stranger, _ = await udp()
    before = node.router.dropped["unbound_source"]
    stranger.sendto(rtp(seq, 0, media["ssrc"]), dest)
    pt.sendto(rtp(seq, 0, media["ssrc"]), dest)  # the real publisher's next packet arrives after it
    for ssrc, _, proto in players:  # once the real packet is through, the stranger's was handled
        await until_seq(proto, (fields(got[ssrc][0])[1] + seq - 1000) & 0xFFFF)
    assert node.router.dropped["unbound_source"] == before + 1

    # malformed packets are dropped and counted; the node keeps forwarding
    malformed_before = node.router.dropped["malformed"]
    for junk in (b"\x00" * 3, b"\x40" + bytes(20), bytes([0x8F, 96]) + bytes(10), bytes([0xA0, 96]) + bytes(10) + b"\x00"):
        pt.sendto(junk, dest)
    pt.sendto(rtp(seq + 1, 0, media["ssrc"]), dest)
    for ssrc, _, proto in players:
        await until_seq(proto, (fields(got[ssrc][0])[1] + seq + 1 - 1000) & 0xFFFF)
    assert node.router.dropped["malformed"] == malformed_before + 4

    for t in [pt, stranger] + [t for _, t, _ in players]:
        t.close()


async def test_stopping_a_stream_stops_its_media(node, connect):
    host, viewer = await connect(node), await connect(node)
    await host.login("room1", "host")
    await viewer.login("room1", "viewer")
    media = (await host.request("publish", stream_id="s1"))["result"]["media"]
    dest = (media["host"], media["port"])
    play = (await viewer.request("play", stream_id="s1", resource_mode=3))["result"]["media"]
    vt, vproto = await udp()
    vt.sendto(rtcp_rr(play["ssrc"]), dest)
    pt, _ = await udp()
    assert (await host.request("stop_publish", stream_id="s1"))["type"] == "reply"
    before = node.router.dropped["unknown_ssrc"]
    pt.sendto(rtp(1, 0, media["ssrc"]), dest)  # the old SSRC: no longer bound
    again = (await host.request("publish", stream_id="s1"))["result"]["media"]
    assert again["ssrc"] != media["ssrc"]
    pt.sendto(rtp(50, 0, again["ssrc"]), dest)  # same socket: handled after the stale one
    data = await asyncio.wait_for(vproto.queue.get(), 5)
    assert fields(data)[3] == play["ssrc"]
    assert node.router.dropped["unknown_ssrc"] == before + 1
    pt.close()
    vt.close()
