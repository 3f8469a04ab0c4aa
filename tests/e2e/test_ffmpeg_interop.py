"""ffmpeg publishes to the node over plain RTP; ffmpeg plays from the node's SDP. Real processes."""

import asyncio

import aiohttp
import pytest

from tests.conftest import APP_ID, make_token
from tests.e2e.ffmpeg import Player, free_rtp_port, publish_args

pytestmark = pytest.mark.slow


async def post(http, node, path, user, body):
    async with http.post(node.http_url + path, json=body, headers={"Authorization": "Bearer " + make_token(user)}) as r:
        assert r.status == 201, await r.text()
        return await r.json()


@pytest.mark.parametrize("codec, mode", [("VP8", "rtc"), ("VP8", "l3"), ("H264", "rtc")])
async def test_ffmpeg_publisher_to_ffmpeg_player(node, tmp_path, codec, mode):
    # ffmpeg's own H.264 RTP player (without the node between) decodes all but the last ~5 frames of a
    # stream, so the stream is long enough for 95% to measure the node, not that tail.
    frames = 150
    async with aiohttp.ClientSession() as http:
        tracks = [{"kind": "video", "codec": codec, "payload_type": 96}]
        if codec == "VP8":
            tracks.append({"kind": "audio", "codec": "opus", "payload_type": 111})
        pub = await post(http, node, "/api/v1/publish", "cam",
                         {"app_id": APP_ID, "room_id": "room1", "user_id": "cam", "stream_id": "s1", "tracks": tracks})
        ports = {t["kind"]: t["port"] for t in pub["tracks"]}
        play_tracks = [{"kind": "video", "host": "127.0.0.1", "port": free_rtp_port()}]
        if "audio" in ports:
            play_tracks.append({"kind": "audio", "host": "127.0.0.1", "port": free_rtp_port()})
        play = await post(http, node, "/api/v1/play", "viewer",
                          {"app_id": APP_ID, "room_id": "room1", "user_id": "viewer", "stream_id": "s1",
                           "mode": mode, "tracks": play_tracks})
    player = Player(play["sdp"], tmp_path)
    await player.start()
    try:
        publisher = await asyncio.create_subprocess_exec(
            *publish_args(ports["video"], ports.get("audio"), codec=codec, frames=frames),
            stdin=asyncio.subprocess.DEVNULL)
        assert await asyncio.wait_for(publisher.wait(), 60) == 0
        await player.wait_for(lambda c: c.get(0, 0) >= frames, timeout=5)
    finally:
        await player.stop()  # ffmpeg flushes its decoders on SIGINT
    counts = player.counts()
    assert counts.get(0, 0) >= 0.95 * frames, (counts, node.router.counters, node.router.dropped)
    if "audio" in ports:
        assert counts.get(1, 0) >= 0.9 * (frames / 30 / 0.02), counts  # 20 ms Opus frames
    assert node.router.dropped["unbound_source"] == 0


async def test_late_joining_ffmpeg_player_decodes_its_first_frame_at_once(node, tmp_path):
    """A 4-second GOP, a player joining 2 s into it: only the keyframe cache gives it a frame at once."""
    import socket
    import time

    from sfu.http_api import sdp_for_player
    from sfu.media.router import TrackSpec

    async with aiohttp.ClientSession() as http:
        pub = await post(http, node, "/api/v1/publish", "cam",
                         {"app_id": APP_ID, "room_id": "room1", "user_id": "cam", "stream_id": "s1",
                          "tracks": [{"kind": "video", "codec": "VP8", "payload_type": 96}]})
        publisher = await asyncio.create_subprocess_exec(
            *publish_args(pub["tracks"][0]["port"], None, frames=240, gop=120), stdin=asyncio.subprocess.DEVNULL)
        try:
            loop = asyncio.get_running_loop()
            (track,) = node.router.tracks()
            deadline = loop.time() + 20
            while track.last_packet is None and loop.time() < deadline:
                await asyncio.sleep(0.01)
            first = track.last_packet  # ffmpeg -re sends in real time: 2 s in is 2 s into the GOP
            while track.last_packet - first < 2.0 and loop.time() < deadline:
                await asyncio.sleep(0.05)
            assert 2.0 <= track.last_packet - first < 3.6, "the join must fall mid-GOP"
            port = free_rtp_port()
            player = Player(sdp_for_player("s1", [("127.0.0.1", port, TrackSpec("video", "VP8", 96))]), tmp_path)
            await player.start()
            for _ in range(500):  # until ffmpeg has bound its port (so the burst is not lost)
                try:
                    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                        probe.bind(("127.0.0.1", port))
                except OSError:
                    break
                await asyncio.sleep(0.01)
            t0 = time.monotonic()
            play = await post(http, node, "/api/v1/play", "viewer",
                              {"app_id": APP_ID, "room_id": "room1", "user_id": "viewer", "stream_id": "s1",
                               "mode": "rtc", "tracks": [{"kind": "video", "host": "127.0.0.1", "port": port}]})
            assert play["sdp"] == player.sdp_path.read_bytes().decode()
            counts = await player.wait_for(lambda c: c.get(0, 0) >= 1, timeout=5)
            first_frame = time.monotonic() - t0
            await player.stop()
        finally:
            publisher.kill()
            await publisher.wait()
    assert counts.get(0, 0) >= 1
    assert first_frame < 0.2, f"first frame {first_frame * 1000:.0f} ms after the play request"
