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
        """Add ``data``; return every complete frame.  Raises on the first bad one.

        Frames are cut from one immutable copy, each once: the gateway reads dozens of
        small frames per read (relays), and cutting each off the front of a buffer
        moved the rest every time."""
        buffer = self._buffer
        if buffer:
            buffer += data
            if len(buffer) < LENGTH.size or \
                    len(buffer) < LENGTH.size + self._announced(buffer, 0):
                return []  # still within the first frame: nothing to copy yet
            data = bytes(buffer)
            buffer.clear()
        elif not isinstance(data, bytes):
            data = bytes(data)  # frames are cut as bytes (ids are made of them, hashed)
        frames = []
        offset, end = 0, len(data)
        while end - offset >= LENGTH.size:
            length = self._announced(data, offset)
            if end - offset < LENGTH.size + length:
                break
            if data[offset + 4] != VERSION:
                raise BadFrame(f"unsupported protocol version {data[offset + 4]}")
            frames.append((data[offset + 5], data[offset + 6:offset + LENGTH.size + length]))
            offset += LENGTH.size + length
        if offset < end:
            buffer += memoryview(data)[offset:]
        return frames

    def _announced(self, data: bytes | bytearray, offset: int) -> int:
        """The length of the frame at ``offset``, checked before any of it is kept."""
        length: int = LENGTH.unpack_from(data, offset)[0]
        if length > self.max_frame:
            raise FrameTooLarge(
                f"peer announced a frame of {length} bytes; the limit is {self.max_frame}")
        if length < 2:
            raise BadFrame(f"frame length {length} is too short for its header")
        return length

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame (bounded by the frame limit)."""
        return len(self._buffer)
