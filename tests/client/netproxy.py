"""A TCP proxy on loopback that tests put between a client and the node to play the network.

`cut()` drops every connection (both sides see it) and refuses new ones until `restore()`;
`blackhole()` silently stops forwarding on the current connections (new ones still pass).
"""

from __future__ import annotations

import asyncio


class _Pair:
    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter):
        self.client, self.upstream = client, upstream
        self.silent = False

    def abort(self) -> None:
        for w in (self.client, self.upstream):
            w.transport.abort()


class TcpProxy:
    def __init__(self, host: str, port: int):
        self._target = (host, port)
        self._pairs: set[_Pair] = set()
        self._refusing = False
        self._server: asyncio.Server | None = None
        self.port = 0
        self.accepted = 0

    @classmethod
    async def to_node(cls, node) -> TcpProxy:
        proxy = cls("127.0.0.1", node.port)
        proxy._server = await asyncio.start_server(proxy._accept, "127.0.0.1", 0)
        proxy.port = proxy._server.sockets[0].getsockname()[1]
        return proxy

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def cut(self) -> None:
        self._refusing = True
        for pair in list(self._pairs):
            pair.abort()

    def blackhole(self) -> None:
        for pair in self._pairs:
            pair.silent = True

    def restore(self) -> None:
        self._refusing = False

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self.accepted += 1
        pair = _Pair(writer, up_writer)
        self._pairs.add(pair)
        try:
            await asyncio.gather(self._pipe(reader, up_writer, pair), self._pipe(up_reader, writer, pair))
        finally:
            self._pairs.discard(pair)
            pair.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pair: _Pair) -> None:
        try:
            while data := await reader.read(65536):
                if not pair.silent:
                    writer.write(data)
                    await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            pair.abort()
