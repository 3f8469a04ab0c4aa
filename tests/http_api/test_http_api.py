"""The HTTP API for stock RTP tools: auth, errors with the table's codes, lifecycle, SDP."""

import asyncio
import socket
import threading
import time

import aiohttp
import pytest

from sfu.errors import ErrorCode
from tests.conftest import APP_ID, make_token
from tests.media.rtp import fields, rtp

VP8 = {"kind": "video", "codec": "VP8", "payload_type": 96}
OPUS = {"kind": "audio", "codec": "opus", "payload_type": 111}


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as s:
        yield s


def body(user, stream="s1", **extra):
    return {"app_id": APP_ID, "room_id": "room1", "user_id": user, "stream_id": stream, **extra}


async def call(http, node, path, user=None, json=None, token=None, method="POST"):
    headers = {}
    if token is not None or user is not None:
        headers["Authorization"] = f"Bearer {token if token is not None else make_token(user)}"
    async with http.request(method, node.http_url + path, json=json, headers=headers) as r:
        return r.status, (await r.json() if r.status != 204 else None)


async def test_publish_announces_the_stream_and_delete_ends_it(node, http, connect):
    watcher = await connect(node)
    await watcher.login("room1", "watcher")
    status, pub = await call(http, node, "/api/v1/publish", "cam", body("cam", tracks=[VP8, OPUS]))
    assert status == 201
    assert [(t["kind"], t["host"]) for t in pub["tracks"]] == [("video", "127.0.0.1"), ("audio", "127.0.0.1")]
    assert len({t["port"] for t in pub["tracks"]}) == 2
    added = await watcher.next_event("room_stream_update")
    assert (added["update_type"], added["streams"][0]["stream_id"], added["streams"][0]["user"]["user_id"]) == \
        (0, "s1", "cam")
    status, _ = await call(http, node, f"/api/v1/sessions/{pub['session_id']}", method="DELETE")
    assert status == 204
    removed = await watcher.next_event("room_stream_update")
    assert removed["update_type"] == 1
    status, err = await call(http, node, f"/api/v1/sessions/{pub['session_id']}", method="DELETE")
    assert (status, err["code"]) == (404, ErrorCode.SESSION_NOT_FOUND)


@pytest.mark.parametrize("case, status, code", [
    ("no_auth", 401, ErrorCode.UNAUTHORIZED),
    ("bad_token", 401, ErrorCode.TOKEN_INVALID),
    ("no_privilege", 403, ErrorCode.PUBLISH_PRIVILEGE_DENIED),
    ("in_use", 409, ErrorCode.STREAM_ID_IN_USE),
    ("not_json", 400, ErrorCode.MALFORMED_MESSAGE),
    ("bad_tracks", 400, ErrorCode.INVALID_ARGUMENT),
    ("bad_stream_id", 400, ErrorCode.STREAM_ID_INVALID),
])
async def test_publish_errors(node, http, case, status, code):
    if case == "in_use":
        assert (await call(http, node, "/api/v1/publish", "first", body("first", tracks=[VP8])))[0] == 201
    if case == "not_json":
        async with http.post(node.http_url + "/api/v1/publish", data=b"{nope",
                             headers={"Authorization": "Bearer " + make_token("u")}) as r:
            got = r.status, await r.json()
    else:
        token = {"no_auth": None, "bad_token": "04garbage", "no_privilege": make_token("u", publish=False)}.get(case)
        b = body("u", tracks=[VP8] if case != "bad_tracks" else [{"kind": "video", "codec": "MPEG2"}])
        if case == "bad_stream_id":
            b["stream_id"] = "bad id"
        got = await call(http, node, "/api/v1/publish", None if case == "no_auth" else "u", b, token=token)
    assert got[0] == status and got[1]["code"] == code, got
    assert got[1]["message"]


async def test_idle_publish_session_times_out(node_factory, http, connect):
    node = await node_factory(session={"rtp_idle_timeout": 0.5, "heartbeat_interval": 0.2})
    watcher = await connect(node)
    await watcher.login("room1", "watcher")
    status, pub = await call(http, node, "/api/v1/publish", "cam", body("cam", tracks=[VP8]))
    assert status == 201
    assert (await watcher.next_event("room_stream_update"))["update_type"] == 0
    assert (await watcher.next_event("room_stream_update", timeout=5))["update_type"] == 1
    assert pub["session_id"] not in node.http_api.sessions


async def test_http_sessions_outlive_a_stall_of_the_node(node_factory, http):
    """No client heartbeats an HTTP session: a node whose event loop stood still for longer than
    session_timeout (stopped, swapped out, a debugger) must not end them once it runs again. (They
    used to be heartbeated by the node's own keepalive timer, which ran after the liveness check.)"""
    node = await node_factory(session={"session_timeout": 1.0, "heartbeat_interval": 0.2, "rtp_idle_timeout": 30.0})
    _, pub = await call(http, node, "/api/v1/publish", "cam", body("cam", tracks=[VP8]))
    _, play = await call(http, node, "/api/v1/play", "viewer", body(
        "viewer", mode="rtc", tracks=[{"kind": "video", "host": "127.0.0.1", "port": 47030}]))
    time.sleep(2.5)  # the stall itself: the node's loop (this one) runs nothing for 2.5 s
    for sid in (pub["session_id"], play["session_id"]):
        status, _ = await call(http, node, f"/api/v1/sessions/{sid}", method="DELETE")
        assert status == 204, sid


async def test_play_sdp_follows_the_live_publisher(node, http):
    await call(http, node, "/api/v1/publish", "cam", body("cam", tracks=[{"kind": "video", "codec": "H264",
                                                                          "payload_type": 102}]))
    status, play = await call(http, node, "/api/v1/play", "viewer", body(
        "viewer", mode="rtc", tracks=[{"kind": "video", "host": "127.0.0.1", "port": 47010}]))
    assert status == 201
    sdp = play["sdp"].split("\r\n")
    assert "m=video 47010 RTP/AVP 102" in sdp and "a=rtpmap:102 H264/90000" in sdp
    assert "a=fmtp:102 packetization-mode=1" in sdp and "c=IN IP4 127.0.0.1" in sdp


async def test_play_before_publish_waits_with_the_declared_codecs(node, http):
    status, play = await call(http, node, "/api/v1/play", "viewer", body(
        "viewer", mode="l3", tracks=[{"kind": "video", "host": "127.0.0.1", "port": 47020},
                                     {"kind": "audio", "host": "127.0.0.1", "port": 47022}]))
    assert status == 201
    sdp = play["sdp"]
    assert "m=video 47020 RTP/AVP 96" in sdp and "a=rtpmap:96 VP8/90000" in sdp
    assert "m=audio 47022 RTP/AVP 111" in sdp and "a=rtpmap:111 opus/48000/2" in sdp
    assert node.service.gauges()[APP_ID]["players_l3"] == 1


@pytest.mark.parametrize("tracks, mode, code", [
    ([{"kind": "video", "host": "localhost", "port": 5000}], "rtc", ErrorCode.INVALID_ARGUMENT),
    ([{"kind": "video", "host": "127.0.0.1", "port": 0}], "rtc", ErrorCode.INVALID_ARGUMENT),
    ([], "rtc", ErrorCode.INVALID_ARGUMENT),
    ([{"kind": "video", "host": "127.0.0.1", "port": 5000}], "cdn", ErrorCode.RESOURCE_MODE_UNSUPPORTED),
])
async def test_play_errors(node, http, tracks, mode, code):
    status, err = await call(http, node, "/api/v1/play", "viewer", body("viewer", mode=mode, tracks=tracks))
    assert status == 400 and err["code"] == code
    assert node.service.gauges()[APP_ID]["users"] == 0  # nothing left behind


async def test_kicked_http_session_is_forgotten(node, http, connect):
    status, pub = await call(http, node, "/api/v1/publish", "cam", body("cam", tracks=[VP8]))
    ws = await connect(node)
    await ws.login("room1", "cam")  # the same user logs in elsewhere: the HTTP session is kicked out
    node.http_api.tick(asyncio.get_running_loop().time())
    assert pub["session_id"] not in node.http_api.sessions
    status, err = await call(http, node, f"/api/v1/sessions/{pub['session_id']}", method="DELETE")
    assert status == 404


class _Socket(asyncio.DatagramProtocol):
    """A player's UDP port: what the node sends it."""

    def __init__(self) -> None:
        self.packets: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data, addr) -> None:
        self.packets.put_nowait(data)


async def _udp(factory=_Socket):
    transport, proto = await asyncio.get_running_loop().create_datagram_endpoint(
        factory, local_addr=("127.0.0.1", 0), family=socket.AF_INET)
    return transport, proto


def _video(host_port, **extra):
    return {"kind": "video", "host": "127.0.0.1", "port": host_port, **extra}


async def test_play_asking_another_codec_than_the_live_one_is_refused(node, http):
    await call(http, node, "/api/v1/publish", "cam", body("cam", tracks=[{"kind": "video", "codec": "H264",
                                                                          "payload_type": 102}]))
    users = node.service.gauges()[APP_ID]["users"]
    status, err = await call(http, node, "/api/v1/play", "viewer", body(
        "viewer", mode="rtc", tracks=[_video(47040, codec="VP8")]))
    assert (status, err["code"], err["name"]) == (409, ErrorCode.PLAY_CODEC_MISMATCH, "PLAY_CODEC_MISMATCH")
    assert "H264" in err["message"] and "VP8" in err["message"]
    assert node.service.gauges()[APP_ID]["users"] == users  # nothing left behind
    status, play = await call(http, node, "/api/v1/play", "viewer", body(
        "viewer", mode="rtc", tracks=[_video(47040, codec="h264")]))  # (names are case-insensitive)
    assert status == 201 and "a=rtpmap:102 H264/90000" in play["sdp"]


async def test_a_live_stream_is_played_with_the_payload_type_asked_for(node, http):
    _, pub = await call(http, node, "/api/v1/publish", "cam", body("cam", tracks=[VP8]))
    transport, player = await _udp()
    port = transport.get_extra_info("sockname")[1]
    status, play = await call(http, node, "/api/v1/play", "viewer", body(
        "viewer", mode="rtc", tracks=[_video(port, payload_type=100)]))
    assert status == 201
    assert f"m=video {port} RTP/AVP 100" in play["sdp"] and "a=rtpmap:100 VP8/90000" in play["sdp"]
    sender, _ = await _udp(asyncio.DatagramProtocol)
    sender.sendto(rtp(1, 3000, 0xCAFE), ("127.0.0.1", pub["tracks"][0]["port"]))
    data = await asyncio.wait_for(player.packets.get(), 5)
    assert fields(data)[0] == 100
    sender.close()
    transport.close()


async def test_an_early_play_ends_when_the_stream_comes_with_another_codec(node, http, connect):
    """Its SDP named VP8 (the default) before the stream was published: H264 under that SDP would
    be garbage to its player, so the session ends instead (as DELETE would end it), while an early
    player that asked for H264 plays."""
    watcher = await connect(node)
    await watcher.login("room1", "watcher", is_user_status_notify=True)
    socks = [await _udp() for _ in range(2)]
    ports = [t.get_extra_info("sockname")[1] for t, _ in socks]
    _, vp8 = await call(http, node, "/api/v1/play", "vp8-viewer", body("vp8-viewer", mode="l3",
                                                                        tracks=[_video(ports[0])]))
    _, h264 = await call(http, node, "/api/v1/play", "h264-viewer", body(
        "h264-viewer", mode="rtc", tracks=[_video(ports[1], codec="H264", payload_type=102)]))
    assert "a=rtpmap:96 VP8/90000" in vp8["sdp"] and "a=rtpmap:102 H264/90000" in h264["sdp"]
    _, pub = await call(http, node, "/api/v1/publish", "cam", body("cam", tracks=[{"kind": "video", "codec": "H264",
                                                                                   "payload_type": 102}]))
    while True:  # the room sees the VP8 player leave
        update = await watcher.next_event("room_user_update")
        if update["update_type"] == 1:
            assert [u["user_id"] for u in update["users"]] == ["vp8-viewer"]
            break
    status, err = await call(http, node, f"/api/v1/sessions/{vp8['session_id']}", method="DELETE")
    assert (status, err["code"]) == (404, ErrorCode.SESSION_NOT_FOUND)
    sender, _ = await _udp(asyncio.DatagramProtocol)
    for seq in range(3):
        sender.sendto(rtp(seq, 3000 * seq, 0xCAFE, bytes([0x65, 0x88, 0x84, 0x00]), pt=102),
                      ("127.0.0.1", pub["tracks"][0]["port"]))
        data = await asyncio.wait_for(socks[1][1].packets.get(), 5)  # the H264 player gets each...
        assert fields(data)[:2] == (102, seq)
    assert socks[0][1].packets.empty()  # ...and the VP8 one nothing
    assert node.service.gauges()[APP_ID]["players_l3"] == 0
    sender.close()
    for t, _ in socks:
        t.close()


async def test_an_http_publisher_outlives_a_stall_of_the_node(node_factory, http):
    """The publisher kept sending while the node stood still for longer than rtp_idle_timeout: the
    node must read those packets before it judges the publisher idle (the event loop runs the
    sockets' callbacks before the timers that fell due meanwhile), and go on forwarding."""
    node = await node_factory(session={"rtp_idle_timeout": 1.0, "heartbeat_interval": 0.2})
    _, pub = await call(http, node, "/api/v1/publish", "cam", body("cam", tracks=[VP8]))
    transport, player = await _udp()
    port = transport.get_extra_info("sockname")[1]
    assert (await call(http, node, "/api/v1/play", "viewer", body("viewer", mode="rtc", tracks=[_video(port)])))[0] == 201
    dest = ("127.0.0.1", pub["tracks"][0]["port"])
    stop = threading.Event()

    def publisher() -> None:  # 100 packets a second, from its own thread: it goes on during the stall
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for seq in range(1000):  # bounded: 10 s at most
                if stop.is_set():
                    return
                s.sendto(rtp(seq, 900 * seq, 0xCAFE), dest)
                time.sleep(0.01)

    thread = threading.Thread(target=publisher, daemon=True)
    thread.start()
    try:
        await asyncio.wait_for(player.packets.get(), 5)
        time.sleep(2.5)  # the stall itself: this loop (the node's) runs nothing for 2.5 s
        for _ in range(350):  # the ~250 packets that waited in the socket, then new ones
            await asyncio.wait_for(player.packets.get(), 5)
        assert node.service.counters["logins"] == 2 and pub["session_id"] in node.http_api.sessions
        status, _ = await call(http, node, f"/api/v1/sessions/{pub['session_id']}", method="DELETE")
        assert status == 204
    finally:
        stop.set()
        thread.join()
        transport.close()
