"""A recording EventHandler for SDK tests: stores every callback, lets a test await one."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Callable

from sfu.client import Engine, EventHandler, RoomConfig, User
from tests.conftest import make_token

Event = SimpleNamespace  # .kind is room_state | user | stream | publisher | player | token_will_expire


class Recorder(EventHandler):
    def __init__(self) -> None:
        self.events: list[Event] = []
        self._cond = asyncio.Condition()

    async def _add(self, kind: str, **fields) -> None:
        async with self._cond:
            self.events.append(Event(kind=kind, **fields))
            self._cond.notify_all()

    async def on_room_state_changed(self, room_id, reason, error_code, extended_data):
        await self._add("room_state", room_id=room_id, reason=reason, error_code=error_code,
                        extended_data=extended_data)

    async def on_room_user_update(self, room_id, update_type, users):
        await self._add("user", room_id=room_id, update_type=update_type, users=users,
                        user_ids=[u.user_id for u in users])

    async def on_room_stream_update(self, room_id, update_type, streams, extended_data):
        await self._add("stream", room_id=room_id, update_type=update_type, streams=streams,
                        stream_ids=[s.stream_id for s in streams], extended_data=extended_data)

    async def on_publisher_state_update(self, stream_id, state, error_code, extended_data):
        await self._add("publisher", stream_id=stream_id, state=state, error_code=error_code,
                        extended_data=extended_data)

    async def on_player_state_update(self, stream_id, state, error_code, extended_data):
        await self._add("player", stream_id=stream_id, state=state, error_code=error_code,
                        extended_data=extended_data)

    async def on_room_token_will_expire(self, room_id, remaining_seconds):
        await self._add("token_will_expire", room_id=room_id, remaining_seconds=remaining_seconds)

    # -- queries -----------------------------------------------------------------------------

    def mark(self) -> int:
        """An index to pass as `start=` to look only at later events."""
        return len(self.events)

    def of(self, kind: str, start: int = 0, **match) -> list[Event]:
        return [e for e in self.events[start:] if _matches(e, kind, match)]

    def reasons(self, start: int = 0) -> list:
        return [e.reason for e in self.of("room_state", start)]

    def states(self, kind: str, stream_id: str, start: int = 0) -> list:
        return [e.state for e in self.of(kind, start, stream_id=stream_id)]

    async def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 5.0, start: int = 0) -> Event:
        """The first event at index >= start for which predicate holds, waiting up to timeout."""
        def find():
            return next((e for e in self.events[start:] if predicate(e)), None)

        async with self._cond:
            try:
                await asyncio.wait_for(self._cond.wait_for(lambda: find() is not None), timeout)
            except TimeoutError:
                raise AssertionError(f"no matching event within {timeout} s; events: {self.dump(start)}") from None
            return find()

    async def wait(self, kind: str, timeout: float = 5.0, start: int = 0, **match) -> Event:
        """wait_for an event of `kind` whose fields equal `match`; `user_id=`/`stream_id=` also match
        inside user/stream lists."""
        return await self.wait_for(lambda e: _matches(e, kind, match), timeout, start)

    def dump(self, start: int = 0) -> str:
        return "\n  " + "\n  ".join(repr(e) for e in self.events[start:])


def _matches(e: Event, kind: str, match: dict) -> bool:
    if e.kind != kind:
        return False
    for key, value in match.items():
        if key == "user_id" and kind == "user":
            if value not in e.user_ids:
                return False
        elif key == "stream_id" and kind == "stream":
            if value not in e.stream_ids:
                return False
        elif getattr(e, key, object()) != value:
            return False
    return True


async def login(engine: Engine, user_id: str, room_id: str = "room1", notify: bool = True, **token) -> None:
    """Log in with a valid token for `user_id` (make_token keywords in `token`)."""
    await engine.login_room(room_id, User(user_id), RoomConfig(token=make_token(user_id, **token),
                                                               is_user_status_notify=notify))
