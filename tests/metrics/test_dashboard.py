"""dashboards/sfu.json: an importable Grafana dashboard whose every query reads what a live node exposes.

The shape (ids, datasource refs, variables, layout) is checked on the JSON; every metric and
label its queries (and its variable queries) use is checked against the /metrics page of a node
that has had a publish, two plays and a refused login; and every query, its Grafana variables
filled in, is evaluated by a real Prometheus scraping that node and must return series.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import APP_ID, OTHER_APP_ID
from tests.metrics.prometheus import running_prometheus, values
from tests.metrics.promql import (exposed_names, grouping_labels, metric_names, problems, selector_labels,
                                  variable_query_expr)
from tests.metrics.traffic import VP8, Traffic

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboards" / "sfu.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
APP_GAUGES = {"sfu_rooms", "sfu_users", "sfu_streams", "sfu_publishers", "sfu_players"}


def load() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels(dash: dict) -> list[dict]:
    out = []
    for p in dash["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # a collapsed row holds its panels
    return out


def panel_exprs(dash: dict) -> list[str]:
    return [t["expr"] for p in panels(dash) if p["type"] != "row" for t in p["targets"]]


def variable_exprs(dash: dict) -> list[str]:
    out = []
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            if (expr := variable_query_expr(q)) is not None:
                out.append(expr)
    return out


def fill(expr: str, variables: dict[str, str]) -> str:
    """Grafana's variable interpolation, for the forms the dashboard uses ($x, ${x}, ${x:fmt}, [[x]])."""
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]",
                  lambda m: variables[m.group(1) or m.group(2) or m.group(3)], expr)


def test_the_dashboard_has_an_importable_shape():
    dash = load()
    assert dash["schemaVersion"] >= 36 and dash["title"] and dash["uid"]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["app_id"]["type"] == "query" and variables["app_id"]["datasource"] == DATASOURCE
    assert re.fullmatch(r"label_values\(.+,\s*app_id\)", variables["app_id"]["query"]["query"])

    all_panels = panels(dash)
    ids = [p["id"] for p in all_panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    boxes = []
    for p in all_panels:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        boxes.append((g["x"], g["y"], g["x"] + g["w"], g["y"] + g["h"], p["title"]))
        if p["type"] == "row":
            continue
        assert p["title"] and p["datasource"] == DATASOURCE, p["title"]
        assert p["targets"], p["title"]
        ref_ids = [t["refId"] for t in p["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), p["title"]
        for t in p["targets"]:
            assert t["datasource"] == DATASOURCE and t["expr"].strip(), p["title"]
    for i, a in enumerate(boxes):  # no two panels overlap
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a[4], b[4])

    for expr in panel_exprs(dash):  # per-app gauges follow the app_id variable
        for name, labels in selector_labels(expr).items():
            if name in APP_GAUGES:
                assert "app_id" in labels and "$app_id" in expr, expr


def test_the_dashboard_covers_the_metric_families():
    queried = set().union(*map(metric_names, panel_exprs(load())))
    wanted = {"sfu_rtp_packets_received_total", "sfu_rtp_packets_sent_total", "sfu_rtp_bytes_received_total",
              "sfu_rtp_bytes_sent_total", "sfu_players", "sfu_rooms", "sfu_users", "sfu_streams",
              "sfu_publishers", "sfu_rtp_packets_dropped_total", "sfu_nack_received_total", "sfu_nack_sent_total",
              "sfu_retransmissions_total", "sfu_keyframe_requests_total", "sfu_frames_dropped_total",
              "sfu_l3_buffer_delay_seconds_bucket", "sfu_first_frame_seconds_bucket",
              "sfu_event_loop_lag_seconds_bucket", "process_cpu_seconds_total", "process_resident_memory_bytes"}
    assert wanted <= queried, wanted - queried


@pytest.mark.parametrize("expr, names", [
    ("up", {"up"}),
    ('sum by (mode) (sfu_players{instance=~"$instance", app_id=~"$app_id"})', {"sfu_players"}),
    ("histogram_quantile(0.99, sum by (le, mode) (rate(sfu_first_frame_seconds_bucket[5m])))",
     {"sfu_first_frame_seconds_bucket"}),
    ("sum(rate(a_total[$__rate_interval])) / sum(rate(b_total[1m] offset 5m)) * 8", {"a_total", "b_total"}),
    ("rate(x_total[5m]) and on (instance, job) group_left(version) info_thing", {"x_total", "info_thing"}),
    ('max_over_time(lag_seconds[10m:1m]) > bool 1e3 unless ignoring(le) {__name__="by_name"}',
     {"lag_seconds", "by_name"}),
    ("sum without (reason) (dropped_total) BY (x)", {"dropped_total"}),
    ('count(sfu_l3_thing{a="}", b=~"rate(fake_metric[5m])"} @ start())', {"sfu_l3_thing"}),
    ("sum(rate(sfu_rtp_packet_sent_total[5m]))", {"sfu_rtp_packet_sent_total"}),  # the misspelt one, found
])
def test_metric_names_are_extracted_from_promql(expr, names):
    assert metric_names(expr) == names


def test_variable_queries_and_labels_are_extracted():
    assert variable_query_expr('label_values(sfu_users{instance=~"$instance"}, app_id)') == \
        'sfu_users{instance=~"$instance"}'
    assert variable_query_expr("label_values(app_id)") is None
    assert variable_query_expr("query_result(topk(3, x))") == "topk(3, x)"
    assert selector_labels('rate(a{x="1", y!~"z"}[5m]) + b{w="q"}') == {"a": {"x", "y"}, "b": {"w"}}
    assert grouping_labels("sum by (le, mode) (a) * on(instance) group_left(version) b") == \
        {"le", "mode", "instance", "version"}


@pytest.fixture
async def live_page(node):
    """The /metrics page of a node with a publish, an RTC and an L3 player, and one refused login."""
    async with aiohttp.ClientSession() as http:
        traffic = Traffic(node, http)
        try:
            await traffic.publish("cam")
            await traffic.play("rtc")
            await traffic.play("l3")
            await traffic.until_players_receive()
            async with http.post(node.http_url + "/api/v1/publish", json={"app_id": APP_ID, "room_id": "room1",
                                                                          "user_id": "intruder", "stream_id": "s2",
                                                                          "tracks": [VP8]},
                                 headers={"Authorization": "Bearer 04garbage"}) as r:
                assert r.status == 401
            async with http.get(node.http_url + "/metrics") as r:
                assert r.status == 200
                page = await r.text()
            yield page, traffic
        finally:
            await traffic.stop()


async def test_every_metric_and_label_the_dashboard_queries_exists_on_a_live_node(live_page):
    page, _ = live_page
    exposed = exposed_names(page)
    dash = load()
    found = [(expr, problems(expr, exposed)) for expr in panel_exprs(dash) + variable_exprs(dash)]
    bad = "\n".join(f"{expr}\n    {'; '.join(p)}" for expr, p in found if p)
    assert not bad, "dashboard queries that read nothing on a live node:\n" + bad
    # the check is not vacuous: a misspelt name, a wrong label and a wrong grouping are caught on this page
    assert problems("sum(rate(sfu_rtp_packet_sent_total[5m]))", exposed) == \
        ["sfu_rtp_packet_sent_total: no such series"]
    assert problems('sfu_players{mod="l3"}', exposed) == \
        ["sfu_players: no label 'mod' (it has ['app_id', 'mode'])"]
    assert problems("sum by (reason) (sfu_users)", exposed) == \
        ["grouping by 'reason', which none of ['sfu_users'] has"]
    assert problems("sfu_rtp_packets_sent", exposed) == ["sfu_rtp_packets_sent: no such series"]  # no _total
    assert problems("sfu_l3_buffer_delay_seconds", exposed) == ["sfu_l3_buffer_delay_seconds: no such series"]


@pytest.mark.slow
async def test_every_dashboard_query_returns_series_from_a_real_prometheus(live_page, node, tmp_path):
    """Each expr, variables filled in, is valid PromQL and finds data while the media flows."""
    dash = load()
    variables = {"instance": ".+", "app_id": str(APP_ID), "__rate_interval": "5s"}
    async with running_prometheus(f"127.0.0.1:{node.port}", tmp_path) as prom:
        # rates need two samples of the traffic: wait for the packets to show in one
        await prom.until("rate(sfu_rtp_packets_sent_total[5s]) > 0", lambda r: len(r) == 1)
        for expr in panel_exprs(dash) + variable_exprs(dash):
            result = await prom.until(fill(expr, variables), lambda r: len(r) > 0, timeout=10)
            assert result, expr
        app_ids = [v for v in dash["templating"]["list"] if v["name"] == "app_id"][0]["query"]["query"]
        assert set(values(await prom.query(fill(variable_query_expr(app_ids), variables)), by="app_id")) == \
            {str(APP_ID), str(OTHER_APP_ID)}  # the variable offers every configured app
