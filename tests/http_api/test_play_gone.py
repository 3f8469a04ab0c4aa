"""An HTTP play session whose player is gone ends by itself; one whose player listens keeps going,
and loses nothing meanwhile (docs/http_api.md; sfu/media/reachability.py).

A player that plays from our SDP sends the node nothing: the ICMP port unreachable that the node's
datagrams bring back once the player's socket is closed is the only sign. Real sockets on
loopback, a real node; the players here are plain UDP sockets (tests/e2e has the same with ffmpeg)."""

import asyncio
import socket

import aiohttp
import pytest

from tests.conftest import APP_ID, make_token
from tests.media.rtp import fields, rtp

VP8 = {"kind": "video", "codec": "VP8", "payload_type": 96}
TIMEOUT = 1.0  # session.rtp_unreachable_timeout here
PACKETS_PER_S = 100


async def post(http, node, path, user, body):
    async with http.post(node.http_url + path, json=body, headers={"Authorization": "Bearer " + make_token(user)}) as r:
        assert r.status == 201, await r.text()
        return await r.json()


def body(user, **extra):
    return {"app_id": APP_ID, "room_id": "room1", "user_id": user, "stream_id": "s1", **extra}


def family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def gone_address(host: str = "127.0.0.1") -> tuple:
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.bind((host, 0))
    addr = s.getsockname()
    s.close()  # nobody listens there any more: a datagram to it comes back port unreachable
    return addr


def listener(addr=("127.0.0.1", 0)) -> socket.socket:
    s = socket.socket(family(addr[0]), socket.SOCK_DGRAM)
    s.bind(addr)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.setblocking(False)
    return s


def drain(s: socket.socket) -> list[int]:
    seqs = []
    while True:
        try:
            seqs.append(fields(s.recv(4096))[1])
        except BlockingIOError:
            return seqs


class Publisher:
    """Keyframe packets (each a whole VP8 frame) to the node, paced, until stopped or `limit` sent."""

    def __init__(self, port: int, limit: int = 3000, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(family(host), socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.dest = (host, port)
        self.limit = limit
        self.sent = 0
        self.task: asyncio.Task | None = None

    async def _run(self) -> None:
        for seq in range(self.limit):  # bounded: 30 s at most
            self.sock.sendto(rtp(seq, 900 * seq, 0x1234), self.dest)
            self.sent += 1
            await asyncio.sleep(1 / PACKETS_PER_S)

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        self.sock.close()


async def user_left(watcher, user_id: str, timeout: float) -> None:
    while True:
        m = await watcher.next_event("room_user_update", timeout=timeout)
        if m["update_type"] == 1 and user_id in [u["user_id"] for u in m["users"]]:
            return


@pytest.mark.parametrize("mode, host", [("rtc", "127.0.0.1"), ("l3", "127.0.0.1"), ("rtc", "::1")])
async def test_a_gone_player_s_session_ends_and_the_one_that_listens_gets_everything(node_factory, connect, mode, host):
    node = await node_factory(node={"host": host}, session={"rtp_unreachable_timeout": TIMEOUT, "heartbeat_interval": 0.2})
    watcher = await connect(node)
    await watcher.login("room1", "watcher", is_user_status_notify=True)
    live = listener((host, 0))
    async with aiohttp.ClientSession() as http:
        pub = await post(http, node, "/api/v1/publish", "cam", body("cam", tracks=[VP8]))
        stay = await post(http, node, "/api/v1/play", "stay", body("stay", mode=mode, tracks=[
            {"kind": "video", "host": host, "port": live.getsockname()[1]}]))
        gone = await post(http, node, "/api/v1/play", "gone", body("gone", mode=mode, tracks=[
            {"kind": "video", "host": host, "port": gone_address(host)[1]}]))
    publisher = Publisher(pub["tracks"][0]["port"], host=host)
    loop = asyncio.get_running_loop()
    try:
        publisher.start()
        started = loop.time()
        await user_left(watcher, "gone", timeout=TIMEOUT + 10)
        ended = loop.time()
        sent_by_then = publisher.sent
        await asyncio.sleep(0.5)  # the live player's session keeps going: half a second more of media
    finally:
        await publisher.stop()
    assert ended - started >= TIMEOUT  # not before its addresses were unreachable that long
    assert gone["session_id"] not in node.http_api.sessions
    assert stay["session_id"] in node.http_api.sessions
    assert publisher.sent > sent_by_then
    assert node.endpoint.counters["icmp_errors"] > 0
    # (the node's own sends retry a pending error: nothing is lost to the player that listens)
    got = []
    for _ in range(200):  # bounded: the node's last releases (L3 holds frames up to 0.35 s)
        got += drain(live)
        if got and got[-1] == publisher.sent - 1:
            break
        await asyncio.sleep(0.01)
    assert got == list(range(publisher.sent)), (len(got), publisher.sent)
    assert node.endpoint.unsent == 0
    live.close()


async def test_a_player_that_listens_again_within_the_timeout_keeps_its_session(node_factory):
    node = await node_factory(session={"rtp_unreachable_timeout": 1.5, "heartbeat_interval": 0.2})
    port = gone_address()[1]
    async with aiohttp.ClientSession() as http:
        pub = await post(http, node, "/api/v1/publish", "cam", body("cam", tracks=[VP8]))
        play = await post(http, node, "/api/v1/play", "late", body("late", mode="rtc", tracks=[
            {"kind": "video", "host": "127.0.0.1", "port": port}]))
    publisher = Publisher(pub["tracks"][0]["port"])
    publisher.start()
    try:
        while node.endpoint.counters["icmp_errors"] < 10:  # bounded by the publisher's limit
            assert not publisher.task.done()
            await asyncio.sleep(0.05)
        late = listener(("127.0.0.1", port))  # the player starts (ffmpeg opened the SDP late)
        await asyncio.sleep(1.5 + 3.0 + 0.5)  # past the timeout and the gap: it would have ended by now
        assert play["session_id"] in node.http_api.sessions
        assert node.endpoint.unreachable_for(("127.0.0.1", port)) == 0.0
        assert drain(late)  # and it plays
        late.close()
    finally:
        await publisher.stop()


async def test_a_session_ends_when_every_one_of_its_addresses_is_gone_whoever_else_plays_there(node_factory, connect):
    """Two sessions play to one gone address, one of them DELETEd meanwhile: the other still ends by
    itself; a session whose video goes there and whose audio goes to a socket that listens keeps
    going (only every address of it unreachable ends it)."""
    node = await node_factory(session={"rtp_unreachable_timeout": TIMEOUT, "heartbeat_interval": 0.2})
    watcher = await connect(node)
    await watcher.login("room1", "watcher", is_user_status_notify=True)
    port = gone_address()[1]
    live = listener()
    audio = {"kind": "audio", "codec": "opus", "payload_type": 111}
    async with aiohttp.ClientSession() as http:
        pub = await post(http, node, "/api/v1/publish", "cam", body("cam", tracks=[VP8, audio]))
        plays = {user: await post(http, node, "/api/v1/play", user, body(user, mode="rtc", tracks=tracks))
                 for user, tracks in (
                     ("first", [{"kind": "video", "host": "127.0.0.1", "port": port}]),
                     ("second", [{"kind": "video", "host": "127.0.0.1", "port": port}]),
                     ("half", [{"kind": "video", "host": "127.0.0.1", "port": port},
                               {"kind": "audio", "host": "127.0.0.1", "port": live.getsockname()[1]}]))}
        async with http.delete(node.http_url + f"/api/v1/sessions/{plays['first']['session_id']}") as r:
            assert r.status == 204
    video, audio_port = (t["port"] for t in pub["tracks"])
    publisher = Publisher(video)
    sound = Publisher(audio_port)
    loop = asyncio.get_running_loop()
    try:
        publisher.start()
        sound.start()
        started = loop.time()
        await user_left(watcher, "second", timeout=TIMEOUT + 10)
        assert loop.time() - started >= TIMEOUT
        await asyncio.sleep(TIMEOUT + 0.5)  # long enough for "half" to have ended too, were it to
    finally:
        await publisher.stop()
        await sound.stop()
    assert set(node.http_api.sessions) == {pub["session_id"], plays["half"]["session_id"]}
    assert node.endpoint.unreachable_for(("127.0.0.1", port)) >= TIMEOUT  # (its video address: gone all along)
    assert drain(live)  # (the audio it gets)
    live.close()
