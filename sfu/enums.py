"""The seeds' enumerations, with the values of DESIGN.md §1.

Shared by the node (room service, signalling) and the client SDK, so both sides
speak the same numbers on the wire.
"""

from enum import IntEnum


class RoomStateChangedReason(IntEnum):
    LOGINING = 0
    LOGINED = 1
    LOGIN_FAILED = 2
    RECONNECTING = 3
    RECONNECTED = 4
    RECONNECT_FAILED = 5
    KICK_OUT = 6
    LOGOUT = 7
    LOGOUT_FAILED = 8


class UpdateType(IntEnum):
    ADD = 0
    DELETE = 1


class PublisherState(IntEnum):
    NO_PUBLISH = 0
    PUBLISH_REQUESTING = 1
    PUBLISHING = 2


class PlayerState(IntEnum):
    NO_PLAY = 0
    PLAY_REQUESTING = 1
    PLAYING = 2


class ResourceMode(IntEnum):
    DEFAULT = 0
    ONLY_CDN = 1
    ONLY_L3 = 2
    ONLY_RTC = 3
