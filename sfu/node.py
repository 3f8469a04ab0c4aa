"""The media node: HTTP (/healthz, /metrics), WebSocket signalling (/ws) and the room service, wired together."""

from __future__ import annotations

import asyncio
import logging
import socket

from aiohttp import web

from sfu import __version__
from sfu.config import Config
from sfu.http_api import HttpApi
from sfu.loop_lag import LoopLagMonitor
from sfu.media.endpoint import MediaEndpoint
from sfu.media.router import MediaSettings, Router
from sfu.media.service import MediaService
from sfu.metrics import CONTENT_TYPE, NodeMetrics
from sfu.room import RoomService
from sfu.signalling.server import SignallingServer

log = logging.getLogger("sfu.node")


def media_settings(config: Config) -> MediaSettings:
    """The media plane's settings from the config ([l3], [media]); the rest are MediaSettings' defaults."""
    l3, media = config.l3, config.media
    return MediaSettings(l3_min_delay=l3.min_delay, l3_max_delay=l3.max_delay, l3_late_repair=l3.late_repair,
                         retransmission_packets=media.retransmission_packets,
                         retransmission_age=media.retransmission_age,
                         keyframe_cache_packets=media.keyframe_cache_packets,
                         keyframe_cache_bytes=media.keyframe_cache_bytes,
                         keyframe_min_interval=media.keyframe_min_interval)


class Node:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.service = RoomService(config.apps, config.session)
        self.signalling = SignallingServer(self.service, config.signalling)
        self.router = Router(media_settings(config))
        self.endpoint = MediaEndpoint(self.router, config.node.host, config.node.rtp_ports)
        self.media = MediaService(self.router, self.endpoint)
        s = config.session
        self.http_api = HttpApi(self.service, self.signalling, self.media, s.rtp_idle_timeout,
                                keepalive_interval=min(1.0, s.heartbeat_interval, s.rtp_idle_timeout / 4,
                                                       s.rtp_unreachable_timeout / 4),
                                rtp_unreachable_timeout=s.rtp_unreachable_timeout)
        self.loop_lag = LoopLagMonitor()
        self.metrics = NodeMetrics(service=self.service, signalling=self.signalling, router=self.router,
                                   endpoint=self.endpoint, lag=self.loop_lag, version=__version__,
                                   per_stream_labels=config.metrics.per_stream_labels)
        self._runner: web.AppRunner | None = None
        self.host = config.node.host
        self.port = config.node.port
        self._stopped = asyncio.Event()

    @property
    def http_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return self.http_url.replace("http://", "ws://", 1) + "/ws"

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 20)
        app.router.add_get("/ws", self.signalling.handle)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        self.http_api.routes(app)
        return app

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "version": __version__,
                                  "connections": self.signalling.connections, "media_port": self.endpoint.port})

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def start(self) -> None:
        await self.endpoint.start()
        self.signalling.attach_media(self.media)
        self.http_api.start()
        self.loop_lag.start()
        self._runner = web.AppRunner(self.make_app(), handle_signals=False, access_log=None)
        await self._runner.setup()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.create_server((self.host, self.port), family=family, reuse_port=False)
        self.port = sock.getsockname()[1]  # the bound port when port=0
        await web.SockSite(self._runner, sock).start()
        log.info("node listening on %s", self.http_url)

    async def stop(self) -> None:
        if self._runner is None:
            return
        await self.http_api.stop()
        await self.loop_lag.stop()
        await self.signalling.shutdown()
        await self._runner.cleanup()
        self._runner = None
        await self.endpoint.stop()
        self._stopped.set()
