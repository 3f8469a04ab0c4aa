"""bench/impair.py: the ImpairedLink on real loopback sockets, its decisions checked against NetEm's own."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from sfu.media.netem import NetEm

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from impair import ImpairedLink  # noqa: E402


class Endpoint(asyncio.DatagramProtocol):
    """A plain socket that records what it receives (with the loop's time) and can echo it."""

    def __init__(self, echo: bool = False) -> None:
        self.echo = echo
        self.received: list[tuple[bytes, tuple, float]] = []
        self.transport = None

    @classmethod
    async def open(cls, echo: bool = False) -> Endpoint:
        _, ep = await asyncio.get_running_loop().create_datagram_endpoint(lambda: cls(echo),
                                                                           local_addr=("127.0.0.1", 0))
        return ep

    @property
    def address(self):
        return self.transport.get_extra_info("sockname")[:2]

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.received.append((data, addr[:2], time.monotonic()))  # the link's clock
        if self.echo:
            self.transport.sendto(b"re:" + data, addr)


async def until(predicate, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def test_each_direction_has_its_own_seeded_impairment_and_the_target_sees_the_link() -> None:
    tapped = []
    link = ImpairedLink(NetEm(11, loss=0.3), NetEm(12, delay=0.05),
                        tap=lambda direction, data, now: tapped.append((direction, data)))
    node = await Endpoint.open(echo=True)
    client = await Endpoint.open()
    try:
        relay = await link.add_flow(node.address)
        sent = [b"%03d" % i for i in range(200)]
        for data in sent:
            client.transport.sendto(data, relay)
        # the same seed and the same sequence of packets: the same survivors (loss is decided per packet)
        replay = NetEm(11, loss=0.3)
        for data in sent:
            replay.send(data, 0.0)
        survivors = replay.poll(0.0)
        assert 100 < len(survivors) < 170
        await until(lambda: len(client.received) == len(survivors))
        assert [d for d, _, _ in node.received] == survivors  # no delay up: in order
        assert {addr for _, addr, _ in node.received} == {relay}  # the node sees the link, not the client
        # down: no loss, every echo back to the client, from the link's address, 50 ms later
        assert [d for d, _, _ in client.received] == [b"re:" + d for d in survivors]
        assert {addr for _, addr, _ in client.received} == {relay}
        for (_, _, at_node), (_, _, at_client) in zip(node.received, client.received):
            assert at_client - at_node >= 0.05
        assert link.up.counters["lost"] == 200 - len(survivors) and link.down.counters["lost"] == 0
        assert [d for direction, d in tapped if direction == "up"] == sent  # before impairment
        assert len([d for direction, d in tapped if direction == "down"]) == len(survivors)
    finally:
        link.close()
        node.transport.close()
        client.transport.close()


async def test_flows_of_one_link_share_its_rate_cap() -> None:
    entered: list[str] = []
    link = ImpairedLink(NetEm(1, rate_bps=800_000), NetEm(2),  # 100 kB/s
                        tap=lambda direction, data, now: entered.append(direction))
    nodes = [await Endpoint.open(), await Endpoint.open()]
    clients = [await Endpoint.open(), await Endpoint.open()]
    try:
        flows = [await link.route("video", nodes[0].address), await link.route("audio", nodes[1].address)]
        start = time.monotonic()
        for i in range(10):
            for client, flow in zip(clients, flows):
                client.transport.sendto(bytes(1000), flow)
            # one pair at a time onto the link: a loop may read each socket dry before the next (uvloop
            # does), and the test is about the queue, not about the order sockets are read in
            await until(lambda: len(entered) == 2 * (i + 1))
        await until(lambda: len(nodes[0].received) == 10 and len(nodes[1].received) == 10)
        last = max(at for node in nodes for _, _, at in node.received)
        assert last - start >= 0.19  # 20 kB at 100 kB/s, whichever flow they came on
        first_of_each = [node.received[0][2] - start for node in nodes]
        assert max(first_of_each) < 0.1  # interleaved on the one queue, neither flow waits for the other
    finally:
        link.close()
        for ep in (*nodes, *clients):
            ep.transport.close()
