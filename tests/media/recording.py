"""What a Router sends during a run: every datagram of `on_datagram` and `on_timer`, in order, as a
count and a digest (with each one's key and destination). For tests that require two runs to send
the same datagrams."""

import hashlib

from sfu.media import router


class Outputs:
    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self.count = 0
        self.routers: list[router.Router] = []  # the Routers seen, in the order they first sent

    def record(self, out: list) -> list:
        for key, data, addr in out:
            self._digest.update(repr((key, addr)).encode() + data)
            self.count += 1
        return out

    @property
    def digest(self) -> str:
        return self._digest.hexdigest()


def record_outputs(monkeypatch) -> Outputs:
    """Wraps Router.on_datagram and Router.on_timer (until `monkeypatch.undo()`)."""
    outputs = Outputs()
    on_datagram, on_timer = router.Router.on_datagram, router.Router.on_timer

    def datagram(self, *a):
        if self not in outputs.routers:
            outputs.routers.append(self)
        return outputs.record(on_datagram(self, *a))

    monkeypatch.setattr(router.Router, "on_datagram", datagram)
    monkeypatch.setattr(router.Router, "on_timer", lambda self, *a: outputs.record(on_timer(self, *a)))
    return outputs
