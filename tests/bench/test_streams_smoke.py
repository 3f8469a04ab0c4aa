"""bench/streams.py runs through `sfu bench streams` (a smoke test of the script, not a measurement):
the JSON's shape, and what the run must show whatever the machine's speed: the reference calls every
track at each wake-up, the Router only the tracks due, and both released the streams' frames."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_streams_writes_the_json_and_counts_the_tracks_a_wake_up_calls(tmp_path):
    out = tmp_path / "streams.json"
    proc = subprocess.run(
        [sys.executable, "-m", "sfu", "bench", "streams", "--streams", "1,4", "--seconds", "0.5",
         "--min-packets", "100", "--rounds", "1", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "every track / heap" in proc.stdout  # the table
    report = json.loads(out.read_text())
    one, four = report["results"]
    assert (one["streams"], four["streams"]) == (1, 4)
    for row in (one, four):
        m = row["streams"]
        heap, every = row["heap"], row["every_track"]
        assert heap["packets_in"] == every["packets_in"] >= 100
        assert heap["frames_released"] == every["frames_released"] > 10 * m  # 0.5 s at 30 frames/s, each stream
        assert every["track_calls"] == m * every["wakeups"]  # every track, at every wake-up
        assert heap["track_calls"] <= 1.2 * heap["wakeups"]  # the streams are out of phase: mostly one is due
        assert heap["us_per_packet"] > 0 and row["every_track_over_heap"] > 0
    assert one["heap"]["x_one_stream"] == 1.0
