"""Malformed RTP/RTCP at a live node is dropped and counted; the node keeps serving."""

import asyncio
import struct

from tests.media.rtp import rtcp_rr, rtp
from tests.media.test_forward_loopback import udp


async def test_malformed_media_is_dropped_and_counted(node, connect):
    host = await connect(node)
    await host.login("room1", "host")
    media = (await host.request("publish", stream_id="s1"))["result"]["media"]
    track = (media["host"], media["tracks"][1]["port"])
    shared = (media["host"], node.endpoint.port)
    sock, _ = await udp()
    sock.sendto(rtp(1, 0, 0x42), track)  # binds the publisher
    bad_track = [
        b"\x80",  # truncated
        rtp(2, 0, 0x42)[:11],  # truncated header
        bytes([0x40]) + rtp(2, 0, 0x42)[1:],  # version 1
        bytes([0xA0]) + rtp(2, 0, 0x42)[1:-1] + b"\xff",  # padding count past the payload
        bytes([0xA0]) + rtp(2, 0, 0x42)[1:-1] + b"\x00",  # padding count 0
        bytes([0x8F]) + rtp(2, 0, 0x42)[1:12],  # 15 CSRCs announced, none there
        bytes([0x90]) + rtp(2, 0, 0x42)[1:12] + struct.pack("!HH", 0xBEDE, 200),  # extension past the end
    ]
    bad_shared = [
        struct.pack("!BBHI", 0x80, 201, 9, 1),  # RTCP length past the end
        bytes([0x40, 201, 0, 1]) + bytes(4),  # RTCP version 1
        rtcp_rr(0xDEADBEEF),  # a receiver report from an SSRC the node never gave out
        rtp(5, 0, 0xDEADBEEF),  # RTP to the shared port from nobody
    ]
    for d in bad_track:
        sock.sendto(d, track)
    for d in bad_shared:
        sock.sendto(d, shared)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    expected = {"malformed": len(bad_track) + 2, "unknown_ssrc": 2}
    while loop.time() < deadline and any(node.router.dropped[k] < v for k, v in expected.items()):
        await asyncio.sleep(0.02)  # the counters are the only observable of a drop
    assert {k: node.router.dropped[k] for k in expected} == expected
    assert (await host.request("heartbeat"))["type"] == "reply"
    stranger, _ = await udp()
    stranger.sendto(rtp(3, 0, 0x42), track)
    deadline = loop.time() + 5
    while loop.time() < deadline and node.router.dropped["unbound_source"] < 1:
        await asyncio.sleep(0.02)
    assert node.router.dropped["unbound_source"] == 1
    sock.close()
    stranger.close()
