"""PublisherConfig/PlayerConfig.media_route: the SDK's media goes through a relay the test owns, and
the node latches the relay; PlayerConfig.on_frame sees every frame the player returns."""

from __future__ import annotations

import asyncio

from sfu.client import PlayerConfig, PlayerState, PublisherConfig, ResourceMode
from sfu.rtp.header import is_rtcp
from tests.client.recording import login


class Relay(asyncio.DatagramProtocol):
    """One loopback socket: datagrams from `target` go back to the last other sender, the rest to `target`."""

    def __init__(self) -> None:
        self.target: tuple[str, int] | None = None
        self.client = None
        self.transport = None
        self.up = {"rtp": 0, "rtcp": 0}
        self.down = {"rtp": 0, "rtcp": 0}

    @classmethod
    async def open(cls) -> Relay:
        _, relay = await asyncio.get_running_loop().create_datagram_endpoint(cls, local_addr=("127.0.0.1", 0))
        return relay

    @property
    def address(self) -> tuple[str, int]:
        return self.transport.get_extra_info("sockname")[:2]

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        kind = "rtcp" if is_rtcp(data) else "rtp"
        if addr == self.target:
            if self.client is not None:
                self.down[kind] += 1
                self.transport.sendto(data, self.client)
        elif self.target is not None:
            self.client = addr
            self.up[kind] += 1
            self.transport.sendto(data, self.target)


async def until(predicate, timeout: float = 5.0, step: float = 0.01) -> None:
    for _ in range(int(timeout / step)):
        if predicate():
            return
        await asyncio.sleep(step)
    raise AssertionError("condition not met in time")


async def test_publisher_and_player_media_go_through_their_routes(node, client) -> None:
    up = {"video": await Relay.open(), "audio": await Relay.open()}
    down = {"video": await Relay.open(), "audio": await Relay.open()}
    asked: list[tuple[str, tuple]] = []

    def publisher_route(kind, addr):  # a plain function
        asked.append((kind, addr))
        up[kind].target = addr
        return up[kind].address

    async def player_route(kind, addr):  # a coroutine works too
        down[kind].target = addr
        return down[kind].address

    frames = []
    viewer, rec = await client(node)
    host, _ = await client(node)
    await login(viewer, "viewer")
    await login(host, "host")
    await viewer.start_playing_stream("live", PlayerConfig(ResourceMode.ONLY_L3, media_route=player_route,
                                                           on_frame=frames.append))
    await host.start_publishing_stream("live", config=PublisherConfig(media_route=publisher_route))
    await rec.wait("player", stream_id="live", state=PlayerState.PLAYING)
    await until(lambda: sum(f.kind == "video" for f in frames) >= 30)

    # the routes were asked with the node's addresses, and the node took the relays for the clients
    assert sorted(kind for kind, _ in asked) == ["audio", "video"]
    assert all(addr[0] == "127.0.0.1" and addr[1] != node.endpoint.port for _, addr in asked)
    (video,) = [t for t in node.router.tracks() if t.spec.kind == "video"]
    assert video.addr == up["video"].address
    for kind in ("video", "audio"):
        assert up[kind].up["rtp"] > 0 and up[kind].up["rtcp"] > 0  # media and sender reports
        assert down[kind].up["rtcp"] > 0 and down[kind].down["rtp"] > 0  # reports out, media back
    assert down["video"].target == (node.endpoint.host, node.endpoint.port)
    stats = host.get_publisher_stats()
    assert stats.local_addresses["video"] == up["video"].client

    # on_frame: every frame the player returned, as it returned it
    await viewer.stop_playing_stream("live")
    received = viewer.get_player_stats("live")
    video_frames = [f for f in frames if f.kind == "video"]
    assert len(video_frames) == received.frames_received
    assert sum(f.kind == "audio" for f in frames) == received.audio_frames_received > 0
    assert video_frames[0].keyframe
    assert all(f.capture_ntp is not None and 0 <= f.latency < 1.0 for f in video_frames)
    assert all(a.completed_at <= b.completed_at for a, b in zip(video_frames, video_frames[1:]))
    await host.stop_publishing_stream()
    for relay in (*up.values(), *down.values()):
        relay.transport.close()


class DoublingRelay(Relay):
    """A Relay whose way down sends every RTP datagram twice: a network that duplicates."""

    def datagram_received(self, data: bytes, addr) -> None:
        super().datagram_received(data, addr)
        if addr == self.target and self.client is not None and not is_rtcp(data):
            self.transport.sendto(data, self.client)


async def test_a_player_counts_duplicated_packets_apart(node, client) -> None:
    down = {"video": await DoublingRelay.open(), "audio": await Relay.open()}

    def player_route(kind, addr):
        down[kind].target = addr
        return down[kind].address

    viewer, rec = await client(node)
    host, _ = await client(node)
    await login(viewer, "viewer")
    await login(host, "host")
    await viewer.start_playing_stream("live", PlayerConfig(ResourceMode.ONLY_RTC, media_route=player_route))
    await host.start_publishing_stream("live")
    await rec.wait("player", stream_id="live", state=PlayerState.PLAYING)
    await until(lambda: viewer.get_player_stats("live").frames_received >= 30)
    await host.stop_publishing_stream()

    def counted_apart() -> bool:  # every second copy is a duplicate; the first copies, audio's too, received
        stats = viewer.get_player_stats("live")
        sent_twice = down["video"].down["rtp"]
        return stats.packets_duplicated == sent_twice and \
            stats.packets_received == sent_twice + down["audio"].down["rtp"]

    await until(counted_apart)
    stats = viewer.get_player_stats("live")
    assert stats.packets_duplicated >= 30 and stats.packets_lost == 0
    await viewer.stop_playing_stream("live")
    for relay in down.values():
        relay.transport.close()
