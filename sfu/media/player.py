"""One player's view of one publisher track: where it goes, and its own numbering."""

from __future__ import annotations

from dataclasses import dataclass, field

from sfu.media.packet import MediaPacket
from sfu.media.rewrite import SeqRewriter
from sfu.rtp.header import rewrite_rtp

Addr = tuple


@dataclass(slots=True)
class PlayerTrack:
    kind: str
    ssrc: int
    l3: bool
    addr: Addr | None = None
    payload_type: int | None = None  # None: the publisher's
    rewriter: SeqRewriter = field(default_factory=SeqRewriter)
    epoch: int = -1  # the publisher track epoch it follows
    started: bool = False  # has had its first frame (the cached GOP or a live keyframe)
    last_ext: int | None = None  # the highest input ext_seq sent
    packets_sent: int = 0
    retransmissions: int = 0

    def follow(self, epoch: int) -> None:
        """A (new) publisher: numbering continues after what this player already got."""
        if self.epoch != epoch:
            if self.epoch != -1:
                self.rewriter.reset()
            self.epoch = epoch
            self.started = False
            self.last_ext = None

    def skip_to(self, ext_seq: int) -> None:
        """Input packets before `ext_seq` that this player will never get leave no gap in its numbering."""
        if self.last_ext is None or ext_seq - self.last_ext > 4096:
            return
        for e in range(self.last_ext + 1, ext_seq):
            self.rewriter.drop(e)

    def packet(self, p: MediaPacket, payload_type: int) -> bytes | None:
        """The packet rewritten for this player, or None when its numbering has no place for it."""
        seq = self.rewriter.rewrite(p.ext_seq)
        if seq is None:
            return None
        buf = bytearray(p.data)
        rewrite_rtp(buf, self.ssrc, seq, p.timestamp, payload_type if self.payload_type is None else self.payload_type)
        if self.last_ext is None or p.ext_seq > self.last_ext:
            self.last_ext = p.ext_seq
        self.packets_sent += 1
        return bytes(buf)
