"""Length-prefixed frames.

A frame is a 4-byte big-endian length ``n``, then ``n`` bytes: one byte of protocol
version, one byte of message type, and the body.  The length is checked against the
limit as soon as the 4 header bytes arrive, before any body is buffered.
"""

import struct

from blockhub.errors import BadFrame, FrameTooLarge

VERSION = 1
HEADER = struct.Struct(">IBB")
LENGTH = struct.Struct(">I")
DEFAULT_MAX_FRAME = 256 * 1024


def encode_frame(type_code: int, body: bytes, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    """Frame ``body`` as a message of ``type_code``."""
    length = 2 + len(body)
    if length > max_frame:
        raise FrameTooLarge(f"frame of {length} bytes exceeds the limit of {max_frame}")
    return HEADER.pack(length, VERSION, type_code) + body


class FrameDecoder:
    """Turns a byte stream into (type code, body) pairs, enforcing the size limit."""

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME):
        self.max_frame = max_frame
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Add ``data``; return every complete frame.  Raises on the first bad one."""
        self._buffer += data
        frames = []
        while len(self._buffer) >= LENGTH.size:
            (length,) = LENGTH.unpack_from(self._buffer)
            if length > self.max_frame:
                raise FrameTooLarge(
                    f"peer announced a frame of {length} bytes; the limit is {self.max_frame}")
            if length < 2:
                raise BadFrame(f"frame length {length} is too short for its header")
            if len(self._buffer) < LENGTH.size + length:
                break
            version, type_code = self._buffer[4], self._buffer[5]
            body = bytes(self._buffer[6:LENGTH.size + length])
            del self._buffer[:LENGTH.size + length]
            if version != VERSION:
                raise BadFrame(f"unsupported protocol version {version}")
            frames.append((type_code, body))
        return frames

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame (bounded by the frame limit)."""
        return len(self._buffer)
