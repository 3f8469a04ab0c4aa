"""`sfu publish` and `sfu play --stats-json` as real processes against a real node on loopback."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from tests.conftest import APP_ID, make_token

REPO = Path(__file__).resolve().parents[3]

FIELDS = {"frames_received", "frames_decoded", "frames_dropped", "first_frame_time", "latencies", "packets_received",
          "packets_lost", "packets_duplicated", "nacks_sent", "plis_sent", "audio_frames_received"}


async def sfu(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "sfu", *args, cwd=REPO,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


def common(node, user: str) -> list[str]:
    return ["--server", node.ws_url, "--app-id", str(APP_ID), "--token", make_token(user), "--room-id", "room1",
            "--user-id", user, "--stream-id", "cli-live"]


@pytest.mark.slow
async def test_publish_and_play_from_the_command_line(node, tmp_path: Path) -> None:
    stats_file = tmp_path / "stats.json"
    player = await sfu("play", *common(node, "cli-viewer"), "--mode", "rtc", "--decode",
                       "--stats-json", str(stats_file), "--duration", "4")
    await asyncio.sleep(1.0)  # let the player log in first (it works the other way round too, a GOP later)
    publisher = await sfu("publish", *common(node, "cli-host"), "--codec", "VP8", "--gop", "0.5",
                          "--duration", "3.5")
    (pout, perr), (vout, verr) = await asyncio.wait_for(
        asyncio.gather(publisher.communicate(), player.communicate()), 30)
    assert publisher.returncode == 0, perr.decode()
    assert player.returncode == 0, verr.decode()

    sent = json.loads(pout.decode().strip().splitlines()[-1])
    assert sent["stream_id"] == "cli-live" and sent["frames_sent"] > 0
    stats = json.loads(stats_file.read_text())
    assert FIELDS <= stats.keys()
    assert stats["stream_id"] == "cli-live" and stats["mode"] == "rtc" and stats["video_codec"] == "VP8"
    assert stats["frames_received"] > 0 and stats["frames_decoded"] > 0 and stats["audio_frames_received"] > 0
    assert stats["latencies"] and stats["latency"]["count"] == len(stats["latencies"])
    assert stats["latency"]["max"] < 1.0


async def test_bad_arguments_exit_with_2(node) -> None:
    proc = await sfu("play", *common(node, "x"), "--duration", "-1")
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and b"--duration" in err


async def test_a_refused_login_exits_with_1(node) -> None:
    args = common(node, "x")
    args[args.index("--token") + 1] = "04bogus"
    proc = await sfu("publish", *args, "--duration", "1")
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1 and b"1002067" in err
