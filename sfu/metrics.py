"""The node's Prometheus metrics: the cores' plain counters, read at scrape time.

The cores (room service, Router and its tracks) keep plain counters and sample lists and never
import prometheus_client; this module is the only reader. Each Node has its own
`CollectorRegistry` (several nodes may share a process, as in the tests), holding:

- `SfuCollector`: every `sfu_*` family, built afresh at each scrape from the cores' state. Gauges
  come from the room service and the signalling server; counters from the Router's totals (which
  keep what ended tracks and players counted, so they never go down) and the endpoint; the
  histograms are fed at scrape time with the samples drained from the cores since the last one.
- prometheus_client's `ProcessCollector` (`process_*`).

docs/metrics.md lists every family, its labels, its meaning and its source.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import (CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily,
                                            Metric)

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
MODES = ("rtc", "l3")

L3_DELAY_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0)
FIRST_FRAME_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
LOOP_LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class Buckets:
    """A histogram's state (cumulative at export): counts per upper bound, count and sum."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound (+Inf)
        self.sum = 0.0

    def observe(self, values: Iterable[float]) -> None:
        for v in values:
            self.counts[bisect_left(self.bounds, v)] += 1  # le: a value equal to a bound is in it
            self.sum += v

    def export(self) -> list[tuple[str, float]]:
        out, total = [], 0
        for bound, n in zip(self.bounds + (float("inf"),), self.counts):
            total += n
            out.append(("+Inf" if bound == float("inf") else repr(float(bound)), total))
        return out


class SfuCollector:
    """Reads the node's parts at each scrape (a custom prometheus_client collector)."""

    def __init__(self, *, service, signalling, router, endpoint, lag, version: str,
                 per_stream_labels: bool = False) -> None:
        self.service = service
        self.signalling = signalling
        self.router = router
        self.endpoint = endpoint
        self.lag = lag
        self.version = version
        self.per_stream_labels = per_stream_labels
        self.l3_delay = Buckets(L3_DELAY_BUCKETS)
        self.first_frame = {mode: Buckets(FIRST_FRAME_BUCKETS) for mode in MODES}
        self.loop_lag = Buckets(LOOP_LAG_BUCKETS)

    def collect(self) -> Iterable[Metric]:
        yield from self._gauges()
        yield from self._counters()
        yield from self._histograms()
        if self.per_stream_labels:
            yield from self._per_stream()
        build = GaugeMetricFamily("sfu_build_info", "The node's version (value 1).", labels=["version"])
        build.add_metric([self.version], 1)
        yield build

    def _gauges(self) -> Iterable[Metric]:
        per_app = self.service.gauges()
        families = {name: GaugeMetricFamily(f"sfu_{name}", doc, labels=["app_id"]) for name, doc in (
            ("rooms", "Rooms with at least one user."),
            ("users", "Logged-in users (sessions), attached or in their reconnect grace window."),
            ("streams", "Streams being published."),
            ("publishers", "Sessions publishing at least one stream."),
        )}
        players = GaugeMetricFamily("sfu_players", "Players (plays of a stream) by resource mode.",
                                    labels=["app_id", "mode"])
        for app_id, g in sorted(per_app.items()):
            label = str(app_id)
            for name, family in families.items():
                family.add_metric([label], g[name])
            for mode in MODES:
                players.add_metric([label, mode], g[f"players_{mode}"])
        yield from families.values()
        yield players
        sessions = GaugeMetricFamily("sfu_signalling_sessions",
                                     "Signalling (WebSocket) sessions: attached to a socket, or detached "
                                     "and waiting in the reconnect grace window.", labels=["state"])
        for state, n in self.signalling.session_states(per_app).items():
            sessions.add_metric([state], n)
        yield sessions

    def _counters(self) -> Iterable[Metric]:
        r = self.router.counters
        totals = self.router.totals()
        for name, doc, value in (
            ("sfu_rtp_packets_received", "Datagrams received on the media ports (RTP and RTCP).", r["packets_in"]),
            ("sfu_rtp_bytes_received", "Bytes received on the media ports.", r["bytes_in"]),
            ("sfu_rtp_packets_sent", "Datagrams the media plane sent (RTP and RTCP).", r["packets_out"]),
            ("sfu_rtp_bytes_sent", "Bytes the media plane sent.", r["bytes_out"]),
            ("sfu_nack_received", "NACK packets received from players.", r["nacks_received"]),
            ("sfu_nack_sent", "NACK packets sent to publishers.", totals["nacks_sent"]),
            ("sfu_retransmissions", "Packets resent to players from the retransmission history.",
             totals["retransmissions"]),
            ("sfu_rtp_unreachable", "ICMP errors (port, host or network unreachable) that datagrams sent to "
             "players brought back.", self.endpoint.counters["icmp_errors"]),
            ("sfu_rtp_send_waits", "Datagrams sent from Python (RTCP, the keyframe cache to a new player, "
             "retransmissions) that waited for the media socket's send buffer.", self.endpoint.counters["backlogged"]),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        d = self.router.dropped
        dropped = CounterMetricFamily("sfu_rtp_packets_dropped", "Packets not forwarded, by reason.",
                                      labels=["reason"])
        for reason, value in (("malformed", d["malformed"]), ("unbound_source", d["unbound_source"]),
                              ("unknown_ssrc", d["unknown_ssrc"]),
                              ("congestion", totals["packets_dropped_budget"]),
                              ("late", totals["packets_late"]), ("unsent", self.endpoint.unsent)):
            dropped.add_metric([reason], value)
        yield dropped
        keyframes = CounterMetricFamily("sfu_keyframe_requests", "Keyframe requests (PLI/FIR): received from "
                                        "players, sent to publishers.", labels=["direction"])
        keyframes.add_metric(["received"], r["keyframe_requests_received"])
        keyframes.add_metric(["sent"], totals["plis_sent"])
        yield keyframes
        frames = CounterMetricFamily("sfu_frames_dropped", "Frames dropped, by reason: the latency budget's "
                                     "drops, and frames the L3 jitter buffer gave up.", labels=["reason"])
        for reason, value in (
            ("budget_droppable", totals["dropped_droppable"]), ("budget_skip", totals["dropped_skip"]),
            ("budget_audio", totals["dropped_audio"]),
            ("jitter_incomplete", totals["frames_dropped_incomplete"] + totals["frames_dropped_overflow"]),
            ("jitter_dependency", totals["frames_dropped_dependency"]),
        ):
            frames.add_metric([reason], value)
        yield frames
        probes = CounterMetricFamily("sfu_congestion_probes", "Probes of a player's path that its latency "
                                     "budget held below the stream: started, and failed (the path still took "
                                     "less).", labels=["result"])
        probes.add_metric(["started"], totals["probes"])
        probes.add_metric(["failed"], totals["probes_failed"])
        yield probes
        logins = CounterMetricFamily("sfu_login_failures", "Refused logins, by error code.", labels=["code"])
        for code, n in sorted(self.service.login_failures.items()):
            logins.add_metric([str(code)], n)
        yield logins

    def _histograms(self) -> Iterable[Metric]:
        self.l3_delay.observe(self.router.take_delay_samples())
        for mode, seconds in self.router.take_first_frame_samples():
            self.first_frame[mode].observe((seconds,))
        self.loop_lag.observe(self.lag.take_samples())
        delay = HistogramMetricFamily("sfu_l3_buffer_delay_seconds",
                                      "Time L3 frames spent in the jitter buffer (first packet to release).")
        delay.add_metric([], self.l3_delay.export(), self.l3_delay.sum)
        yield delay
        first = HistogramMetricFamily("sfu_first_frame_seconds", "From a play request reaching the node to the "
                                      "first keyframe packet sent to that player.", labels=["mode"])
        for mode in MODES:
            first.add_metric([mode], self.first_frame[mode].export(), self.first_frame[mode].sum)
        yield first
        lag = HistogramMetricFamily("sfu_event_loop_lag_seconds", "How late a periodic event-loop timer fires.")
        lag.add_metric([], self.loop_lag.export(), self.loop_lag.sum)
        yield lag

    def _per_stream(self) -> Iterable[Metric]:
        players = GaugeMetricFamily("sfu_stream_players", "Players of one stream by mode.",
                                    labels=["app_id", "stream_id", "mode"])
        for (app_id, stream_id), by_mode in sorted(self.service.stream_players().items()):
            for mode in MODES:
                players.add_metric([str(app_id), stream_id, mode], by_mode[mode])
        yield players
        packets = CounterMetricFamily("sfu_stream_rtp_packets_received", "RTP packets received from one "
                                      "stream's publisher track.", labels=["app_id", "stream_id", "kind"])
        target = GaugeMetricFamily("sfu_stream_l3_target_delay_seconds", "The target delay one stream's track's "
                                   "L3 frames are released with: the stream's (the highest of its tracks' own).",
                                   labels=["app_id", "stream_id", "kind"])
        for track in sorted(self.router.tracks(), key=lambda t: (t.key, t.spec.kind)):
            labels = [str(track.key[0]), track.key[1], track.spec.kind]
            packets.add_metric(labels, track.counters["packets"])
            target.add_metric(labels, track.jitter.release_target)
        yield packets
        yield target


class NodeMetrics:
    """A node's registry: `render()` is the body of GET /metrics."""

    def __init__(self, **parts) -> None:
        self.registry = CollectorRegistry()
        self.collector = SfuCollector(**parts)
        self.registry.register(self.collector)
        ProcessCollector(registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
