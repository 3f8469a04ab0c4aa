"""An ffmpeg player killed without a DELETE: its HTTP play session ends by itself (the ICMP port
unreachable the node's datagrams bring back, docs/http_api.md), and the ffmpeg player beside it
decodes the whole stream meanwhile. Real processes."""

import asyncio

import aiohttp
import pytest

from tests.conftest import APP_ID
from tests.e2e.ffmpeg import Player, free_rtp_port, publish_args
from tests.e2e.test_ffmpeg_interop import post
from tests.http_api.test_play_gone import user_left

pytestmark = pytest.mark.slow

TIMEOUT = 2.0  # session.rtp_unreachable_timeout here
FRAMES = 210  # 7 s at 30 frames/s


async def play(http, node, user: str) -> dict:
    return await post(http, node, "/api/v1/play", user, {
        "app_id": APP_ID, "room_id": "room1", "user_id": user, "stream_id": "s1", "mode": "l3",
        "tracks": [{"kind": "video", "host": "127.0.0.1", "port": free_rtp_port()},
                   {"kind": "audio", "host": "127.0.0.1", "port": free_rtp_port()}]})


async def test_a_killed_ffmpeg_player_s_session_ends_and_the_other_plays_on(node_factory, connect, tmp_path):
    node = await node_factory(session={"rtp_unreachable_timeout": TIMEOUT, "heartbeat_interval": 0.2})
    watcher = await connect(node)
    await watcher.login("room1", "watcher", is_user_status_notify=True)
    async with aiohttp.ClientSession() as http:
        pub = await post(http, node, "/api/v1/publish", "cam", {
            "app_id": APP_ID, "room_id": "room1", "user_id": "cam", "stream_id": "s1",
            "tracks": [{"kind": "video", "codec": "VP8", "payload_type": 96},
                       {"kind": "audio", "codec": "opus", "payload_type": 111}]})
        killed_play, kept_play = await play(http, node, "killed"), await play(http, node, "kept")
    ports = {t["kind"]: t["port"] for t in pub["tracks"]}
    killed, kept = Player(killed_play["sdp"], tmp_path, "killed"), Player(kept_play["sdp"], tmp_path, "kept")
    await killed.start()
    await kept.start()
    loop = asyncio.get_running_loop()
    publisher = await asyncio.create_subprocess_exec(*publish_args(ports["video"], ports["audio"], frames=FRAMES),
                                                     stdin=asyncio.subprocess.DEVNULL)
    try:
        assert (await killed.wait_for(lambda c: c.get(0, 0) >= 30, timeout=20)).get(0, 0) >= 30
        killed.proc.kill()  # gone without a word: no DELETE, and it never sent the node anything
        await killed.proc.wait()
        at = loop.time()
        await user_left(watcher, "killed", timeout=TIMEOUT + 10)
        assert loop.time() - at >= TIMEOUT
        assert killed_play["session_id"] not in node.http_api.sessions
        assert kept_play["session_id"] in node.http_api.sessions
        assert publisher.returncode is None, "the stream must still run when the session ends"
        assert await asyncio.wait_for(publisher.wait(), 60) == 0
        await kept.wait_for(lambda c: c.get(0, 0) >= FRAMES, timeout=5)
    finally:
        if publisher.returncode is None:
            publisher.kill()
            await publisher.wait()
        await kept.stop()
    counts = kept.counts()
    assert counts.get(0, 0) >= 0.95 * FRAMES, (counts, node.endpoint.counters, node.endpoint.unsent)
    assert node.endpoint.counters["icmp_errors"] > 0
