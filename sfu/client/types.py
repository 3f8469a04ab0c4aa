"""The seeds' value types: User, Stream, RoomConfig, PlayerConfig, EngineProfile; media: PublisherConfig,
PublisherStats, PlayerStats."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Union

from sfu.enums import ResourceMode

if TYPE_CHECKING:
    from .media.player_track import ReceivedFrame

Addr = tuple[str, int]
MediaRoute = Callable[[str, Addr], Union[Addr, Awaitable[Addr]]]
"""`media_route(kind, (host, port))`: where to send a track's media and RTCP instead of the node's
address (the reply's `host` and the track's port); returns an (ip, port), or an awaitable of one."""


@dataclass(frozen=True)
class User:
    """A user; `user_name` defaults to `user_id`, as the seeds' ZegoUser(userID) does."""

    user_id: str
    user_name: str | None = None

    def __post_init__(self) -> None:
        if self.user_name is None:
            object.__setattr__(self, "user_name", self.user_id)

    def to_wire(self) -> dict:
        return {"user_id": self.user_id, "user_name": self.user_name}

    @classmethod
    def from_wire(cls, raw: dict) -> User:
        return cls(str(raw.get("user_id", "")), raw.get("user_name"))


@dataclass(frozen=True)
class Stream:
    """A published stream as room_stream_update announces it."""

    stream_id: str
    user: User
    extra_info: str = ""

    @classmethod
    def from_wire(cls, raw: dict) -> Stream:
        return cls(str(raw.get("stream_id", "")), User.from_wire(raw.get("user") or {}), raw.get("extra_info") or "")


@dataclass
class RoomConfig:
    """login_room options. `max_member_count` is accepted for the seeds' API; the node ignores it."""

    token: str = ""
    is_user_status_notify: bool = False
    max_member_count: int = 0


@dataclass
class PlayerConfig:
    """start_playing_stream options. `decode`: decode the video with PyAV (frames_decoded counts the
    pictures); without it frames are reassembled and measured only.

    `media_route` (see MediaRoute; None: straight to the node): called once per track with the
    node's media address; the track's socket then sends its RTCP there and accepts datagrams from
    that host only, so a relay in between (e.g. a network emulator) is latched by the node as the
    player's address and carries the media back. `on_frame`: called on the event loop with every
    frame the player returns, as it returns it (a ``ReceivedFrame``: audio packets, and video
    frames complete and whole back to a keyframe, in order; `completed_at` is the loop's time
    when the frame became complete, `latency` from abs-capture-time), e.g. to measure per frame.
    """

    resource_mode: ResourceMode = ResourceMode.DEFAULT
    decode: bool = False
    media_route: MediaRoute | None = None
    on_frame: Callable[[ReceivedFrame], None] | None = None


@dataclass
class PublisherConfig:
    """What start_publishing_stream sends over RTP once the node has answered.

    `source` None: a synthetic test pattern (a moving bar and the frame number) and a 440 Hz tone;
    a path: that media file, decoded and re-encoded, looped (its audio, else the tone).
    `video_codec` is "VP8" or "H264"; `gop_seconds` is the keyframe interval. `video`/`audio`
    turn a track off. `media_route` (see MediaRoute; None: straight to the node): called once per
    track with the track's node address from the publish reply; the track's socket sends there
    instead and accepts feedback from that host only (e.g. through a network emulator).
    """

    video_codec: str = "VP8"
    source: str | None = None
    width: int = 640
    height: int = 360
    fps: float = 30.0
    gop_seconds: float = 2.0
    video_bitrate: int = 800_000
    audio: bool = True
    video: bool = True
    audio_bitrate: int = 32_000
    media_route: MediaRoute | None = None


@dataclass
class PublisherStats:
    """What a publisher has sent (engine.get_publisher_stats). `local_addresses`: kind -> (host, port)
    of the UDP socket each track sends from (and receives RTCP feedback on)."""

    frames_sent: int = 0
    keyframes_sent: int = 0
    audio_frames_sent: int = 0
    packets_sent: int = 0
    bytes_sent: int = 0
    nacks_received: int = 0
    packets_retransmitted: int = 0
    keyframe_requests: int = 0
    frames_skipped: int = 0
    local_addresses: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PlayerStats:
    """What a player has received (engine.get_player_stats).

    frames_received: complete video frames; frames_decoded: pictures the decoder gave (decode=True);
    frames_dropped: video frames given up incomplete; first_frame_time: seconds from
    start_playing_stream to the first complete keyframe (None before); latencies: per complete
    video frame, the wallclock when it became complete minus its abs-capture-time, seconds;
    packets_received / packets_lost: RTP packets of both tracks (lost: RFC 3550 cumulative);
    packets_duplicated: RTP packets that came again (a retransmission that crossed its original, a
    network that duplicates), not in packets_received;
    nacks_sent / plis_sent: RTCP feedback packets sent; audio_frames_received: Opus packets.
    """

    frames_received: int = 0
    frames_decoded: int = 0
    frames_dropped: int = 0
    first_frame_time: float | None = None
    latencies: list[float] = field(default_factory=list)
    packets_received: int = 0
    packets_lost: int = 0
    packets_duplicated: int = 0
    nacks_sent: int = 0
    plis_sent: int = 0
    audio_frames_received: int = 0
    keyframes_received: int = 0
    decode_errors: int = 0
    video_codec: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EngineProfile:
    """What Engine.create needs: the AppID and the node's signalling URL (ws://HOST:PORT/ws).

    `request_timeout` bounds the wait for each reply (REQUEST_TIMEOUT when it runs out).
    """

    app_id: int
    server: str
    scenario: int = 0
    request_timeout: float = 10.0
