"""The wire format shared by every socket: frames, message schemas, signed envelopes and
sealed boxes.  Pure code; docs/protocol.md describes it byte by byte."""
