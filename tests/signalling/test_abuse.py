"""Rate limiting and the authentication window, on a real node."""

import asyncio

from sfu.errors import ErrorCode


async def test_flood_is_rate_limited_and_others_are_served(node_factory, connect):
    node = await node_factory(signalling={"rate_limit_per_second": 20.0, "rate_limit_burst": 20})
    calm = await connect(node)
    await calm.login("room1", "calm")
    flood = await connect(node)
    await flood.login("room1", "flood")
    for i in range(150):
        await flood.send({"v": 1, "id": 1000 + i, "type": "heartbeat"})
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert (await calm.request("heartbeat"))["type"] == "reply"  # served while the flood is handled
    assert loop.time() - t0 < 1.0
    await asyncio.sleep(0.2)  # the bucket refills with time: that is the rule under test
    await flood.send({"v": 1, "id": 9999, "type": "heartbeat"})
    replies, limited = 0, []
    while True:
        m = await flood.recv()
        if m["type"] == "error":
            assert m["code"] == ErrorCode.RATE_LIMITED and m["id"] is None
            limited.append(m)
        elif m["id"] == 9999:
            break
        else:
            replies += 1
    assert 15 <= replies <= 25  # the burst, plus what refilled during the flood
    assert len(limited) == 1  # one error per second, not one per dropped frame
    assert node.signalling.counters["rate_limited"] >= 100


async def test_a_socket_that_keeps_flooding_is_closed(node_factory, connect):
    node = await node_factory(signalling={"rate_limit_per_second": 5.0, "rate_limit_burst": 5})
    flood = await connect(node)
    for i in range(200):
        if flood.ws.closed:
            break
        await flood.send({"v": 1, "id": i, "type": "heartbeat"})
    frames, close = await flood.closed()
    assert frames[-1]["code"] == ErrorCode.RATE_LIMITED and "flooding" in frames[-1]["message"]


async def test_unauthenticated_socket_is_closed(node_factory, connect):
    node = await node_factory(session={"auth_timeout": 0.3})
    idle = await connect(node)
    frames, close = await idle.closed(timeout=5)
    assert [f["code"] for f in frames] == [ErrorCode.AUTH_TIMEOUT]
    assert idle.ws.close_code == 4000
