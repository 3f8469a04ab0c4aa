"""GET /metrics on a live node: the agreed families (docs/metrics.md) with the right values while a
publisher and two players (one RTC, one L3) run, and the gauges back at zero when they end.

Media: the HTTP API (POST /api/v1/publish, /api/v1/play) and plain RTP from UDP sockets on
loopback. Every wait polls a condition against a deadline.
"""

from __future__ import annotations

import asyncio
import socket
import time

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sfu import __version__
from sfu.errors import ErrorCode
from tests.conftest import APP_ID, OTHER_APP_ID, make_token
from tests.media.rtp import rtp

VP8 = {"kind": "video", "codec": "VP8", "payload_type": 96}
FRAME_INTERVAL = 1 / 30
MAX_FRAMES = 1800  # 60 s: longer than any wait here

GAUGES = ("sfu_rooms", "sfu_users", "sfu_streams", "sfu_publishers", "sfu_players", "sfu_signalling_sessions",
          "sfu_build_info")
COUNTERS = ("sfu_rtp_packets_received", "sfu_rtp_bytes_received", "sfu_rtp_packets_sent", "sfu_rtp_bytes_sent",
            "sfu_rtp_packets_dropped", "sfu_nack_received", "sfu_nack_sent", "sfu_retransmissions",
            "sfu_rtp_unreachable", "sfu_rtp_send_waits", "sfu_keyframe_requests", "sfu_frames_dropped",
            "sfu_congestion_probes", "sfu_login_failures")
HISTOGRAMS = ("sfu_l3_buffer_delay_seconds", "sfu_first_frame_seconds", "sfu_event_loop_lag_seconds")


class Scrape:
    """One /metrics page, parsed."""

    def __init__(self, text: str) -> None:
        self.families = {f.name: f for f in text_string_to_metric_families(text)}

    def value(self, sample: str, **labels: str) -> float:
        """The value of the one sample with this name and exactly these labels (KeyError if none)."""
        for family in self.families.values():
            for s in family.samples:
                if s.name == sample and s.labels == labels:
                    return s.value
        raise KeyError(f"{sample}{labels}")

    def gauge(self, name: str, app_id: int = APP_ID, **labels: str) -> float:
        return self.value(name, app_id=str(app_id), **labels)


async def scrape(http: aiohttp.ClientSession, node) -> Scrape:
    async with http.get(node.http_url + "/metrics") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return Scrape(await r.text())


async def until(http, node, condition, what: str, timeout: float = 10.0) -> Scrape:
    """Scrape until `condition(scrape)` holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        s = await scrape(http, node)
        try:
            if condition(s):
                return s
        except KeyError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class Sink(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets = 0

    def datagram_received(self, data, addr) -> None:
        self.packets += 1


async def udp(protocol=asyncio.DatagramProtocol):
    loop = asyncio.get_running_loop()
    return await loop.create_datagram_endpoint(protocol, local_addr=("127.0.0.1", 0), family=socket.AF_INET)


async def post(http, node, path: str, user: str, token: str | None = None, **fields) -> tuple[int, dict]:
    body = {"app_id": APP_ID, "room_id": "room1", "user_id": user, "stream_id": "s1", **fields}
    headers = {"Authorization": "Bearer " + (token if token is not None else make_token(user))}
    async with http.post(node.http_url + path, json=body, headers=headers) as r:
        return r.status, await r.json()


async def delete(http, node, session_id: str) -> None:
    async with http.delete(f"{node.http_url}/api/v1/sessions/{session_id}") as r:
        assert r.status == 204


async def send_frames(transport, dest) -> None:
    """A publisher: one VP8 keyframe packet (a whole frame) per frame interval, bounded in count."""
    for i in range(MAX_FRAMES):
        transport.sendto(rtp(1000 + i, 3000 * i, 0x5EED), dest)
        await asyncio.sleep(FRAME_INTERVAL)


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as s:
        yield s


async def test_families_are_all_there_at_start_with_zero_gauges(node, http):
    s = await scrape(http, node)
    for name in GAUGES + COUNTERS + HISTOGRAMS + ("process_cpu_seconds", "process_resident_memory_bytes"):
        assert name in s.families, name
    for name in ("sfu_rooms", "sfu_users", "sfu_streams", "sfu_publishers"):
        assert s.families[name].type == "gauge"
        for app in (APP_ID, OTHER_APP_ID):  # every configured app has its sample, at 0
            assert s.gauge(name, app) == 0
    for name in COUNTERS:
        assert s.families[name].type == "counter", name
    for name in HISTOGRAMS:
        assert s.families[name].type == "histogram", name
    assert s.gauge("sfu_players", mode="rtc") == s.gauge("sfu_players", mode="l3") == 0
    assert s.value("sfu_build_info", version=__version__) == 1
    assert s.value("sfu_first_frame_seconds_count", mode="l3") == 0
    assert not [f for f in s.families if f.startswith("sfu_stream_")]  # per-stream families are off by default


async def test_a_publisher_and_two_players_then_everything_ends(node_factory, http, connect):
    node = await node_factory(session={"reconnect_grace": 0.5})
    # a signalling session, attached
    watcher = await connect(node)
    assert (await watcher.login("room1", "watcher"))["type"] == "reply"
    # a refused login is counted with its code
    status, err = await post(http, node, "/api/v1/publish", "intruder", token="04garbage", tracks=[VP8])
    assert (status, err["code"]) == (401, ErrorCode.TOKEN_INVALID)

    status, pub = await post(http, node, "/api/v1/publish", "cam", tracks=[VP8])
    assert status == 201
    (track,) = pub["tracks"]
    sender, _ = await udp()
    feeding = asyncio.create_task(send_frames(sender, (track["host"], track["port"])))
    players, sessions = {}, [pub["session_id"]]
    try:
        await until(http, node, lambda s: s.value("sfu_rtp_packets_received_total") > 0, "the publisher's packets")
        for mode in ("rtc", "l3"):
            transport, sink = await udp(Sink)
            port = transport.get_extra_info("sockname")[1]
            status, play = await post(http, node, "/api/v1/play", f"viewer-{mode}", mode=mode,
                                      tracks=[{"kind": "video", "host": "127.0.0.1", "port": port}])
            assert status == 201, play
            players[mode] = (transport, sink)
            sessions.append(play["session_id"])

        s = await until(http, node, lambda s: s.value("sfu_first_frame_seconds_count", mode="l3") == 1
                        and s.value("sfu_first_frame_seconds_count", mode="rtc") == 1
                        and s.value("sfu_l3_buffer_delay_seconds_count") > 0
                        and s.value("sfu_event_loop_lag_seconds_count") > 0,  # a sample every 100 ms
                        "first frames, L3 releases and a loop-lag sample")
        assert all(sink.packets > 0 for _, sink in players.values())
        for mode in ("rtc", "l3"):
            first = s.value("sfu_first_frame_seconds_sum", mode=mode)
            assert 0 <= first < 1.0  # the GOP cache answers a late joiner at once
            assert s.value("sfu_first_frame_seconds_bucket", mode=mode, le="+Inf") == 1
        # the gauges
        assert (s.gauge("sfu_rooms"), s.gauge("sfu_users"), s.gauge("sfu_streams"), s.gauge("sfu_publishers")) == \
            (1, 4, 1, 1)
        assert s.gauge("sfu_players", mode="rtc") == s.gauge("sfu_players", mode="l3") == 1
        assert s.gauge("sfu_users", OTHER_APP_ID) == 0 and s.gauge("sfu_players", OTHER_APP_ID, mode="l3") == 0
        assert s.value("sfu_signalling_sessions", state="attached") == 1
        assert s.value("sfu_signalling_sessions", state="detached") == 0
        assert s.value("sfu_login_failures_total", code=str(int(ErrorCode.TOKEN_INVALID))) == 1
        assert s.value("sfu_event_loop_lag_seconds_count") > 0
        # the traffic counters grow
        sent = s.value("sfu_rtp_packets_sent_total")
        assert sent > 0 and s.value("sfu_rtp_bytes_sent_total") > 12 * sent
        assert s.value("sfu_rtp_bytes_received_total") > 12 * s.value("sfu_rtp_packets_received_total")
        await until(http, node, lambda s2: s2.value("sfu_rtp_packets_sent_total") >= sent + 10, "packets sent to grow")
        # a malformed packet from the publisher's address: dropped, counted by reason
        assert s.value("sfu_rtp_packets_dropped_total", reason="malformed") == 0
        sender.sendto(bytes([0x8F, 96]) + bytes(10), (track["host"], track["port"]))  # 15 CSRCs past the end
        s = await until(http, node, lambda s: s.value("sfu_rtp_packets_dropped_total", reason="malformed") == 1,
                        "the malformed packet to be counted")
        reasons = {x.labels["reason"] for x in s.families["sfu_rtp_packets_dropped"].samples}
        assert reasons == {"malformed", "unbound_source", "unknown_ssrc", "congestion", "late", "unsent"}
        before = {name: s.value(name) for name in ("sfu_rtp_packets_sent_total", "sfu_rtp_packets_received_total",
                                                   "sfu_l3_buffer_delay_seconds_count")}
    finally:
        feeding.cancel()
        await asyncio.gather(feeding, return_exceptions=True)
        sender.close()
        for transport, _ in players.values():
            transport.close()

    # everything ends: the players and the publisher leave, the watcher's socket closes
    for sid in sessions:
        await delete(http, node, sid)
    await watcher.ws.close()
    s = await until(http, node, lambda s: s.value("sfu_signalling_sessions", state="detached") == 1,
                    "the watcher's session to be detached")
    assert s.value("sfu_signalling_sessions", state="attached") == 0
    s = await until(http, node, lambda s: s.gauge("sfu_users") == 0, "the detached session to end")
    for name in ("sfu_rooms", "sfu_users", "sfu_streams", "sfu_publishers"):
        assert s.gauge(name) == 0, name
    assert s.gauge("sfu_players", mode="rtc") == s.gauge("sfu_players", mode="l3") == 0
    assert s.value("sfu_signalling_sessions", state="attached") == s.value("sfu_signalling_sessions",
                                                                             state="detached") == 0
    for name, value in before.items():  # counters never go down when their tracks and players end
        assert s.value(name) >= value, name
    assert s.value("sfu_first_frame_seconds_count", mode="rtc") == 1


async def test_per_stream_labels_and_one_registry_per_node(node_factory, http):
    node = await node_factory(metrics={"per_stream_labels": True})
    other = await node_factory()  # same process, its own registry
    status, pub = await post(http, node, "/api/v1/publish", "cam", tracks=[VP8])
    assert status == 201
    (track,) = pub["tracks"]
    transport, sink = await udp(Sink)
    port = transport.get_extra_info("sockname")[1]
    status, play = await post(http, node, "/api/v1/play", "viewer", mode="l3",
                              tracks=[{"kind": "video", "host": "127.0.0.1", "port": port}])
    assert status == 201
    sender, _ = await udp()
    feeding = asyncio.create_task(send_frames(sender, (track["host"], track["port"])))
    try:
        s = await until(http, node, lambda s: s.value("sfu_stream_rtp_packets_received_total", app_id=str(APP_ID),
                                                        stream_id="s1", kind="video") > 0, "per-stream packets")
        assert s.value("sfu_stream_players", app_id=str(APP_ID), stream_id="s1", mode="l3") == 1
        assert s.value("sfu_stream_players", app_id=str(APP_ID), stream_id="s1", mode="rtc") == 0
        assert 0.02 <= s.value("sfu_stream_l3_target_delay_seconds", app_id=str(APP_ID), stream_id="s1",
                               kind="video") <= 0.5
        assert s.value("sfu_rtp_packets_received_total") > 0
    finally:
        feeding.cancel()
        await asyncio.gather(feeding, return_exceptions=True)
        sender.close()
        transport.close()
    o = await scrape(http, other)
    assert o.value("sfu_rtp_packets_received_total") == 0 and o.gauge("sfu_streams") == 0
    assert not [f for f in o.families if f.startswith("sfu_stream_")]
    for sid in (play["session_id"], pub["session_id"]):
        await delete(http, node, sid)
    s = await scrape(http, node)
    assert "sfu_stream_players" in s.families and not s.families["sfu_stream_players"].samples
    assert not s.families["sfu_stream_rtp_packets_received"].samples


def test_histogram_buckets_are_cumulative_and_inclusive():
    from sfu.metrics import Buckets

    b = Buckets((0.1, 1.0))
    b.observe([0.1, 0.5, 2.0])
    b.observe([0.05])
    assert b.export() == [("0.1", 2), ("1.0", 3), ("+Inf", 4)]
    assert b.sum == pytest.approx(2.65)
