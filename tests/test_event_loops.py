"""The suite runs on the loops the code runs on: the node's tests on uvloop (conftest's hook)."""

import asyncio

import uvloop


async def test_node_tests_run_on_uvloop() -> None:
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
