"""Running ffmpeg as a real RTP publisher and player (Debian's ffmpeg, installed by .ci/run)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
from pathlib import Path

import pytest


def ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        pytest.fail("ffmpeg is not installed (.ci/run installs Debian's ffmpeg)")
    return path


def free_rtp_port() -> int:
    """An even UDP port whose successor is free too (ffmpeg may use port+1 for RTCP)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port % 2 or port >= 65534:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, \
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no free UDP port pair")


def publish_args(video_port: int | None, audio_port: int | None, *, codec="VP8", frames=150, gop=30,
                 rate=30) -> list[str]:
    args = [ffmpeg(), "-hide_banner", "-loglevel", "error", "-re",
            "-f", "lavfi", "-i", f"testsrc=size=320x240:rate={rate}",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    if video_port is not None:
        args += ["-map", "0:v", "-frames:v", str(frames)]
        if codec == "VP8":
            args += ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "400k",
                     "-g", str(gop), "-keyint_min", str(gop), "-payload_type", "96"]
        else:
            args += ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(gop),
                     "-keyint_min", str(gop), "-bsf:v", "dump_extra", "-payload_type", "96"]
        args += ["-f", "rtp", f"rtp://127.0.0.1:{video_port}?pkt_size=1200"]
    if audio_port is not None:
        args += ["-map", "1:a", "-t", f"{frames / rate:.3f}", "-c:a", "libopus", "-payload_type", "111",
                 "-f", "rtp", f"rtp://127.0.0.1:{audio_port}"]
    return args


class Player:
    """ffmpeg reading an SDP and writing one framecrc line per decoded frame."""

    def __init__(self, sdp: str, workdir: Path, name: str = "play"):
        self.sdp_path = workdir / f"{name}.sdp"
        self.sdp_path.write_text(sdp)
        self.crc = workdir / f"{name}.crc"
        self.proc: asyncio.subprocess.Process | None = None
        self.started = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            ffmpeg(), "-hide_banner", "-loglevel", "error", "-protocol_whitelist", "file,udp,rtp",
            "-reorder_queue_size", "0", "-i", str(self.sdp_path), "-f", "framecrc", "-flush_packets", "1",
            str(self.crc), stdin=asyncio.subprocess.DEVNULL)

    def counts(self) -> dict[int, int]:
        out: dict[int, int] = {}
        if self.crc.exists():
            for line in self.crc.read_text().splitlines():
                if line and not line.startswith("#"):
                    idx = int(line.split(",", 1)[0])
                    out[idx] = out.get(idx, 0) + 1
        return out

    async def wait_for(self, predicate, timeout: float) -> dict[int, int]:
        """Poll the CRC file (ffmpeg's only output) until predicate(counts) or timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            c = self.counts()
            if predicate(c):
                return c
            await asyncio.sleep(0.05)
        return self.counts()

    async def stop(self) -> None:
        if self.proc and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
