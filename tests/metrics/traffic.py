"""Live media through a node for the metrics tests: one publish and one play per mode over the HTTP API.

The publisher is a UDP socket sending VP8 keyframe packets (each a whole frame) every 20 ms from a
background task, bounded in count; each player is a UDP socket the node sends to, counting what
arrives. `stop()` ends every session with DELETE and the sender.
"""

from __future__ import annotations

import asyncio
import socket

import aiohttp

from tests.conftest import APP_ID, make_token
from tests.media.rtp import rtp

VP8 = {"kind": "video", "codec": "VP8", "payload_type": 96}
PACKET_INTERVAL = 0.02
MAX_PACKETS = 3000  # 60 s at 50 packets/s: longer than any test waits


class Counter(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets = 0
        self.arrived = asyncio.Event()

    def datagram_received(self, data, addr) -> None:
        self.packets += 1
        self.arrived.set()


class Traffic:
    def __init__(self, node, http: aiohttp.ClientSession, *, room_id: str = "room1", stream_id: str = "s1") -> None:
        self.node = node
        self.http = http
        self.room_id = room_id
        self.stream_id = stream_id
        self.sessions: list[str] = []
        self.players: dict[str, Counter] = {}
        self.sent = 0
        self._transports: list[asyncio.DatagramTransport] = []
        self._sender: asyncio.Task | None = None

    async def _post(self, path: str, user: str, **fields) -> dict:
        body = {"app_id": APP_ID, "room_id": self.room_id, "user_id": user, "stream_id": self.stream_id, **fields}
        async with self.http.post(self.node.http_url + path, json=body,
                                  headers={"Authorization": "Bearer " + make_token(user)}) as r:
            answer = await r.json()
            assert r.status == 201, answer
        self.sessions.append(answer["session_id"])
        return answer

    async def _udp(self, factory) -> tuple[asyncio.DatagramTransport, object]:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(factory, local_addr=("127.0.0.1", 0),
                                                               family=socket.AF_INET)
        self._transports.append(transport)
        return transport, proto

    async def publish(self, user: str = "cam") -> None:
        answer = await self._post("/api/v1/publish", user, tracks=[VP8])
        dest = (answer["tracks"][0]["host"], answer["tracks"][0]["port"])
        transport, _ = await self._udp(asyncio.DatagramProtocol)
        self._sender = asyncio.create_task(self._send(transport, dest))

    async def _send(self, transport: asyncio.DatagramTransport, dest: tuple[str, int]) -> None:
        for seq in range(MAX_PACKETS):
            transport.sendto(rtp(seq, 1800 * seq, 0x5EED), dest)
            self.sent += 1
            await asyncio.sleep(PACKET_INTERVAL)

    async def play(self, mode: str, user: str | None = None) -> Counter:
        transport, counter = await self._udp(Counter)
        port = transport.get_extra_info("sockname")[1]
        await self._post("/api/v1/play", user or f"viewer-{mode}", mode=mode,
                         tracks=[{"kind": "video", "host": "127.0.0.1", "port": port}])
        self.players[mode] = counter
        return counter

    async def until_players_receive(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(asyncio.gather(*(c.arrived.wait() for c in self.players.values())), timeout)

    async def stop(self) -> None:
        """Stop sending, DELETE every session (players first), close the sockets."""
        if self._sender is not None:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
            self._sender = None
        try:
            for session_id in reversed(self.sessions):
                async with self.http.delete(f"{self.node.http_url}/api/v1/sessions/{session_id}") as r:
                    assert r.status == 204, await r.text()
            self.sessions.clear()
        finally:
            for t in self._transports:
                t.close()
            self._transports.clear()
