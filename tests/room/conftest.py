"""A virtual-clock harness around the sans-IO RoomService."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sfu.config import AppConfig, SessionConfig
from sfu.room import Close, MediaChange, RoomService, Send
from sfu.token import generate_token04, make_payload

APP = 1234567890
SECRET = "0123456789abcdef0123456789abcdef"
APP2 = 42
SECRET2 = "abcdefghijklmnopqrstuvwxyz012345"
EPOCH = 1_800_000_000.0  # wallclock at virtual time 0


class Client:
    """One connection's view: the messages and the close it received."""

    def __init__(self, core: "Core", conn_id: int):
        self.core, self.conn_id = core, conn_id
        self.inbox: list[dict] = []
        self.closed: Close | None = None

    def events(self, name: str | None = None) -> list[dict]:
        return [m for m in self.inbox if m.get("type") == "event" and (name is None or m["event"] == name)]

    def take(self, name: str | None = None) -> list[dict]:
        got = self.events(name)
        self.inbox = [m for m in self.inbox if m not in got]
        return got

    def users(self, update_type: int | None = None) -> list[tuple[int, list[str]]]:
        return [(m["update_type"], [u["user_id"] for u in m["users"]]) for m in self.events("room_user_update")
                if update_type is None or m["update_type"] == update_type]

    # requests, with the core's clock
    def login(self, room="room1", user="u1", *, app=APP, secret=SECRET, notify=True, token=None, name=None,
              ttl=3600, heartbeats=True, **payload):
        if token is None:
            token = self.core.token(user, app=app, secret=secret, ttl=ttl, **payload)
        return self.core.call(self, "login", app_id=app, room_id=room, user_id=user,
                              user_name=name if name is not None else user, token=token, notify=notify,
                              now=self.core.now, wallclock=self.core.wallclock, heartbeats=heartbeats)

    def __getattr__(self, method):
        def call(*args, **kwargs):
            if method in ("renew_token",):
                kwargs.setdefault("wallclock", self.core.wallclock)
            return self.core.call(self, method, *args, now=self.core.now, **kwargs)
        return call


class Core:
    def __init__(self, apps=None, **session):
        self.now = 0.0
        self.config = replace(SessionConfig(), **session)
        apps = apps or [AppConfig(APP, SECRET), AppConfig(APP2, SECRET2)]
        self.service = RoomService(apps, self.config)
        self.clients: dict[int, Client] = {}
        self.media: list[tuple[str, str, str | None]] = []

    @property
    def wallclock(self) -> float:
        return EPOCH + self.now

    def token(self, user, *, app=APP, secret=SECRET, ttl=3600, room_id=None, login=True, publish=True,
              stream_ids=None, legacy=False):
        payload = make_payload(room_id, login=login, publish=publish, stream_ids=stream_ids)
        return generate_token04(app, user, secret, ttl, payload, now=self.wallclock, legacy_cbc=legacy)

    def connect(self) -> Client:
        conn_id = self.service.connect(self.now)
        c = self.clients[conn_id] = Client(self, conn_id)
        return c

    def call(self, client: Client, method: str, *args, **kwargs):
        try:
            return getattr(self.service, method)(client.conn_id, *args, **kwargs)
        finally:
            self.drain()

    def drain(self) -> None:
        while (out := self.service.next_output()) is not None:
            if isinstance(out, MediaChange):
                self.media.append((out.kind, out.stream_id, out.session_id))
                continue
            c = self.clients[out.conn_id]
            if isinstance(out, Send):
                assert c.closed is None, "sent after close"
                c.inbox.append(out.message)
            else:
                c.closed = out
                self.service.disconnect(out.conn_id, self.now)  # what the IO layer does

    def advance(self, seconds: float) -> None:
        """Step the virtual clock, firing every timer on the way, in order."""
        end = self.now + seconds
        while (t := self.service.next_timer()) is not None and t <= end:
            self.now = max(self.now, t)
            self.service.handle_timer(self.now)
            self.drain()
        self.now = end

    def drop(self, client: Client) -> None:
        """The transport vanished (no logout)."""
        self.service.disconnect(client.conn_id, self.now)
        client.closed = Close(client.conn_id, 0, "dropped")
        self.drain()


@pytest.fixture
def core():
    return Core()


@pytest.fixture
def make_core():
    return Core
