"""MediaTotals: the media plane's counters as node-wide totals that never go down.

A sans-IO part of the Router (it reads no clock and touches no socket). The counters that matter
to an operator live on objects that come and go: a `PublisherTrack` (and its `JitterBuffer`) ends
with its stream, a `PlayerTrack` (and its `PlayerPath`'s `LatencyBudget`) with its play. Summed
over what is live, a total would go down when a stream ends. So the Router hands what ends to
`retire_track` / `retire_player`, which fold its counters and its undrained samples into
running totals; `totals(tracks, players)` adds the live objects' counters to them.

Totals (all monotonic): nacks_sent, plis_sent, retransmissions (PublisherTrack.counters);
packets_late, frames_dropped_incomplete, frames_dropped_dependency, frames_dropped_overflow
(JitterBuffer.counters); packets_dropped_budget (PlayerTrack.packets_dropped); dropped_droppable,
dropped_skip, dropped_audio (LatencyBudget.counters, one per PlayerPath); probes, probes_failed
(PlayerCongestion.counters, one per PlayerPath).

Samples (drained by `take_*`; each source is bounded, so an absent reader costs little memory):
L3 buffer delays (JitterBuffer.take_delay_samples) and first-frame times per mode
(PublisherTrack.take_first_frame_samples).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

TRACK_KEYS = ("nacks_sent", "plis_sent", "retransmissions")
JITTER_KEYS = ("packets_late", "frames_dropped_incomplete", "frames_dropped_dependency", "frames_dropped_overflow")
BUDGET_KEYS = ("dropped_droppable", "dropped_skip", "dropped_audio")
CONGESTION_KEYS = ("probes", "probes_failed")
KEYS = TRACK_KEYS + JITTER_KEYS + ("packets_dropped_budget",) + BUDGET_KEYS + CONGESTION_KEYS
_SAMPLES = 4096  # samples of ended tracks kept until the next drain


class MediaTotals:
    def __init__(self) -> None:
        self.retired: dict[str, int] = dict.fromkeys(KEYS, 0)
        self._delays: deque[float] = deque(maxlen=_SAMPLES)
        self._first_frames: deque[tuple[str, float]] = deque(maxlen=_SAMPLES)

    def retire_track(self, track) -> None:
        """A PublisherTrack ends: keep its counters and what its sample lists still hold."""
        _add(self.retired, track.counters, TRACK_KEYS)
        _add(self.retired, track.jitter.counters, JITTER_KEYS)
        self._delays.extend(track.jitter.take_delay_samples())
        self._first_frames.extend(track.take_first_frame_samples())
        for pt in track.players:  # still waiting: a later publisher's first frame is not timed
            pt.play_at = None

    def retire_player(self, tracks: Iterable) -> None:
        """A player's PlayerTracks (one per kind, sharing a path) end: keep their counters."""
        _add_player(self.retired, tracks)

    def totals(self, tracks: Iterable, players: Iterable[Iterable]) -> dict[str, int]:
        """Retired totals plus the live `tracks` (PublisherTracks) and `players` (each a player's
        PlayerTracks)."""
        out = dict(self.retired)
        for track in tracks:
            _add(out, track.counters, TRACK_KEYS)
            _add(out, track.jitter.counters, JITTER_KEYS)
        _add_players(out, players)
        return out

    def take_delay_samples(self, tracks: Iterable) -> list[float]:
        out = list(self._delays)
        self._delays.clear()
        for track in tracks:
            out += track.jitter.take_delay_samples()
        return out

    def take_first_frame_samples(self, tracks: Iterable) -> list[tuple[str, float]]:
        out = list(self._first_frames)
        self._first_frames.clear()
        for track in tracks:
            out += track.take_first_frame_samples()
        return out


def _add(into: dict[str, int], counters: dict[str, int], keys: tuple[str, ...]) -> None:
    for k in keys:
        into[k] += counters.get(k, 0)


def _add_player(into: dict[str, int], tracks: Iterable) -> None:
    _add_players(into, (tracks,))


def _add_players(into: dict[str, int], players: Iterable[Iterable]) -> None:
    """Each player's tracks' drops, and their paths' counters (a path is shared by a player's
    tracks: counted once). One pass over the players, then one over the measured paths (a player
    that never reported has no limits: PlayerPath.measured): a scrape at a few thousand players
    takes this once."""
    dropped, paths = 0, {}
    for tracks in players:
        for pt in tracks:
            dropped += pt.packets_dropped
            if pt.path is not None and pt.path.measured:  # (until then its budget and congestion
                paths[id(pt.path)] = pt.path              # act on nothing: their counters are 0)
    into["packets_dropped_budget"] += dropped
    for path in paths.values():
        _add(into, path.budget.counters, BUDGET_KEYS)
        _add(into, path.congestion.counters, CONGESTION_KEYS)
