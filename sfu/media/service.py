"""The media plane's control surface for signalling and the HTTP API: Router + endpoint together."""

from __future__ import annotations

from collections.abc import Callable

from sfu.media.endpoint import MediaEndpoint
from sfu.media.router import Addr, CodecMismatch, Router, TrackSpec


class MediaService:
    def __init__(self, router: Router, endpoint: MediaEndpoint) -> None:
        self.router = router
        self.endpoint = endpoint
        self._ports: dict[int, int] = {}  # publisher track id -> port
        # told of each player track a new publisher left detached (its codec is not the one the
        # player expects: Router rules), once, after the publish: the HTTP API ends such sessions
        self.codec_mismatch_listeners: list[Callable[[CodecMismatch], None]] = []

    @property
    def host(self) -> str:
        return self.endpoint.host

    def publish(self, app_id: int, stream_id: str, specs: tuple[TrackSpec, ...]) -> dict:
        """Ports for a stream's publisher tracks (opened now, or already open for this publisher)."""
        existing = self.router.publisher_tracks(app_id, stream_id)
        if not existing:
            ids = self.router.add_publisher(app_id, stream_id, specs)
            try:
                self._ports.update(self.endpoint.open_tracks(ids))
            except Exception:
                self.router.end_stream(app_id, stream_id)
                raise
            existing = self.router.publisher_tracks(app_id, stream_id)
            self.endpoint.send([])  # re-arm the timer for the new tracks
            self._tell_mismatches()
        return {"host": self.host, "tracks": [
            {"kind": spec.kind, "codec": spec.codec, "payload_type": spec.payload_type, "port": self._ports[tid]}
            for tid, spec in existing]}

    def play(self, app_id: int, stream_id: str, session_id: str, addrs: dict[str, Addr] | None = None,
             payload_types: dict[str, int] | None = None, *, l3: bool, codecs: dict[str, str] | None = None) -> dict:
        ssrcs, out = self.router.add_player(app_id, stream_id, session_id, addrs, payload_types, l3=l3,
                                            now=self.endpoint.clock(), codecs=codecs)
        self.endpoint.send(out)
        self._tell_mismatches()
        live = {spec.kind: spec for _, spec in self.router.publisher_tracks(app_id, stream_id)}
        tracks = []
        for kind, ssrc in ssrcs.items():
            track = {"kind": kind, "ssrc": ssrc}
            if kind in live:  # known once the stream is published
                track.update(codec=live[kind].codec, payload_type=live[kind].payload_type)
            tracks.append(track)
        return {"host": self.host, "port": self.endpoint.port, "tracks": tracks}

    def _tell_mismatches(self) -> None:
        for mismatch in self.router.take_codec_mismatches():
            for listener in self.codec_mismatch_listeners:
                listener(mismatch)

    def end_stream(self, app_id: int, stream_id: str) -> None:
        ids = self.router.end_stream(app_id, stream_id)
        self.endpoint.close_tracks(ids)
        for tid in ids:
            self._ports.pop(tid, None)

    def on_change(self, change) -> None:
        """A MediaChange from the room service."""
        if change.kind == "stream_ended":
            self.end_stream(change.app_id, change.stream_id)
        elif change.kind == "player_removed":
            self.router.remove_player(change.app_id, change.stream_id, change.session_id)
