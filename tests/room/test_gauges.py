"""What the room service tells the metrics module: gauges per AppID (publishers among them),
players per stream, refused logins by code."""

from sfu.enums import ResourceMode
from sfu.errors import ErrorCode
from tests.room.conftest import APP, APP2
from tests.room.test_login import fails


def test_gauges_follow_publishers_and_players_and_return_to_zero(core):
    host, a, b = core.connect(), core.connect(), core.connect()
    host.login("room1", "host")
    host.publish("s1", "")
    host.publish("s2", "")  # one publisher, two streams
    a.login("room1", "a")
    b.login("room2", "b")
    a.play("s1", int(ResourceMode.ONLY_RTC))
    b.play("s1", int(ResourceMode.ONLY_L3))
    b.play("s2", int(ResourceMode.ONLY_L3))
    g = core.service.gauges()
    assert g[APP] == {"rooms": 2, "users": 3, "streams": 2, "publishers": 1, "players_rtc": 1, "players_l3": 2,
                      "detached": 0}
    assert g[APP2] == {"rooms": 0, "users": 0, "streams": 0, "publishers": 0, "players_rtc": 0, "players_l3": 0,
                       "detached": 0}
    assert core.service.stream_players() == {(APP, "s1"): {"rtc": 1, "l3": 1}, (APP, "s2"): {"rtc": 0, "l3": 1}}
    core.drop(b)
    assert core.service.gauges()[APP]["detached"] == 1
    for c, room in ((host, "room1"), (a, "room1")):
        c.logout(room)
    core.advance(core.config.reconnect_grace + 1)
    assert core.service.gauges()[APP] == dict.fromkeys(g[APP], 0)
    assert core.service.stream_players() == {}


def test_login_failures_are_counted_by_code(core):
    c = core.connect()
    fails(ErrorCode.TOKEN_INVALID, c.login, "room1", "u1", token="04nonsense")
    fails(ErrorCode.TOKEN_INVALID, c.login, "room1", "u1", token="04nonsense")
    fails(ErrorCode.APP_ID_INVALID, c.login, "room1", "u1", app=777)
    assert core.service.login_failures == {int(ErrorCode.TOKEN_INVALID): 2, int(ErrorCode.APP_ID_INVALID): 1}
