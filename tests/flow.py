"""Transports for tests that behave like TCP's under a slow reader: their buffer is
bounded, a streaming producer is paused when it is full and resumed when it drains,
and a graceful close waits for the buffer to drain (a reader that stalls never lets
it).  ``FlowStringTransport`` is drained by hand; ``FlowFakeTransport`` is iosim's,
drained by the pump unless ``stalled``."""

from twisted.internet.testing import StringTransport
from twisted.test import iosim

BUFFER = 64 * 1024  # like FileDescriptor.bufferSize


class FlowStringTransport(StringTransport):
    def __init__(self, *args, buffer_size: int = BUFFER, **kw):
        super().__init__(*args, **kw)
        self.buffer_size = buffer_size
        self.paused = False
        self.aborted = False
        self.held = 0
        self.most = 0  # the most bytes this transport ever held at once

    def write(self, data):
        if self.disconnecting:
            return
        super().write(data)
        self.held += len(data)
        self.most = max(self.most, self.held)
        if self.held > self.buffer_size and self.producer is not None and not self.paused:
            self.paused = True
            self.producer.pauseProducing()

    def writeSequence(self, seq):
        self.write(b"".join(seq))

    def abortConnection(self):
        self.aborted = True
        super().abortConnection()

    def drain(self) -> bytes:
        """What the reader reads now; resumes the producer as TCP would."""
        data = self.value()
        self.clear()
        self.held = 0
        if self.paused and self.producer is not None:
            self.paused = False
            self.producer.resumeProducing()
        return data


class FlowFakeTransport(iosim.FakeTransport):
    buffer_size = BUFFER
    stalled = False  # the reader on the other side stopped reading
    _paused = False
    _closing = False
    pauses = 0  # how often the producer was paused

    def _held(self) -> int:
        return sum(len(chunk) for chunk in self.stream)

    def write(self, data):
        super().write(data)
        if (self.producer is not None and self.streamingProducer and not self._paused
                and self._held() > self.buffer_size):
            self._paused = True
            self.pauses += 1
            self.producer.pauseProducing()

    def getOutBuffer(self):
        if self.stalled:
            return None
        data = super().getOutBuffer()
        if self._paused and self.producer is not None:
            self._paused = False
            self.producer.resumeProducing()
        if self._closing and not self.stream:
            self.disconnecting = True
        return data

    def loseConnection(self):
        """Close once everything written has been read, as TCP does."""
        self._closing = True
        if not self.stream and not self.stalled:
            self.disconnecting = True

    def abortConnection(self):
        self.stream = []
        self.disconnecting = True
