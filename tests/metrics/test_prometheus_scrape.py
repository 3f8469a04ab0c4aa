"""A real Prometheus scrapes a running node every second; what it stores is what happened.

A publish and two plays (RTC and L3) over the HTTP API with RTP flowing: Prometheus's query API
shows packets going out, one player per mode and the room, user, stream and publisher gauges of
the app (and nothing in the other app); after DELETE they all return to zero.
"""

from __future__ import annotations

import os

import aiohttp
import pytest

from tests.conftest import APP_ID, OTHER_APP_ID
from tests.metrics.prometheus import Prometheus, PrometheusError, free_tcp_port, running_prometheus, values
from tests.metrics.traffic import Traffic

pytestmark = pytest.mark.slow

APP, OTHER = str(APP_ID), str(OTHER_APP_ID)
GAUGES = ("sfu_rooms", "sfu_users", "sfu_streams", "sfu_publishers")


def per_app(result: list[dict]) -> dict[str | None, float]:
    return values(result, by="app_id")


async def test_prometheus_helper_scrapes_itself_and_stops_by_pid(tmp_path):
    """The helper on its own: Prometheus as its own target, a query, a bad query's error, the stop."""
    port = free_tcp_port()
    prom = Prometheus(f"127.0.0.1:{port}", tmp_path, port=port)
    await prom.start()
    pid = prom.process.pid
    try:
        await prom.until('up{job="sfu"}', lambda r: values(r) == {None: 1.0})
        with pytest.raises(PrometheusError, match="parse error"):
            await prom.query("rate(up[5s]")
    finally:
        await prom.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_prometheus_sees_a_publish_and_two_plays_come_and_go(node, tmp_path):
    async with aiohttp.ClientSession() as http, \
            running_prometheus(f"127.0.0.1:{node.port}", tmp_path / "prometheus") as prom:
        await prom.until("up", lambda r: values(r) == {None: 1.0})  # the node is scraped
        for name in GAUGES:  # nothing yet, but every configured app already has its 0 sample
            assert per_app(await prom.query(name)) == {APP: 0.0, OTHER: 0.0}

        traffic = Traffic(node, http)
        try:
            await traffic.publish("cam")
            await traffic.play("rtc")
            await traffic.play("l3")
            await traffic.until_players_receive()

            await prom.until("rate(sfu_rtp_packets_sent_total[5s]) > 0", lambda r: len(r) == 1)
            await prom.until("rate(sfu_rtp_packets_received_total[5s]) > 0", lambda r: len(r) == 1)
            await prom.until('sfu_players{mode="l3"} == 1', lambda r: per_app(r) == {APP: 1.0})
            await prom.until('sfu_players{mode="rtc"} == 1', lambda r: per_app(r) == {APP: 1.0})
            expected = {"sfu_rooms": 1, "sfu_users": 3, "sfu_streams": 1, "sfu_publishers": 1}
            for name, n in expected.items():  # cam, viewer-rtc and viewer-l3 in room1
                await prom.until(name, lambda r, n=n: per_app(r) == {APP: n, OTHER: 0.0})
            await prom.until("sum by (mode) (increase(sfu_first_frame_seconds_count[1m])) > 0",
                             lambda r: set(values(r, by="mode")) == {"rtc", "l3"})
        finally:
            await traffic.stop()
        # every packet the publisher sent was counted in, and stored by Prometheus
        await prom.until("sfu_rtp_packets_received_total", lambda r: values(r) == {None: float(traffic.sent)})

        await prom.until("sfu_players", lambda r: len(r) == 4 and all(float(s["value"][1]) == 0 for s in r))
        for name in GAUGES:
            await prom.until(name, lambda r: per_app(r) == {APP: 0.0, OTHER: 0.0})
        await prom.until("rate(sfu_rtp_packets_sent_total[5s])", lambda r: values(r) == {None: 0.0})
