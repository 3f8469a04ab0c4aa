"""The SDK's tests run on both loops an application may bring (conftest's hook)."""

import asyncio

import pytest
import uvloop


async def test_sdk_tests_run_on_the_loop_they_are_named_for(request: pytest.FixtureRequest) -> None:
    loop = asyncio.get_running_loop()
    assert "[uvloop]" in request.node.name or "[asyncio]" in request.node.name
    assert isinstance(loop, uvloop.Loop) == ("[uvloop]" in request.node.name)
