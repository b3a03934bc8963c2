"""AMP commands of the control socket.

One command, ``Call``, names an operation and carries JSON arguments; the daemon
answers with JSON.  The set of operations is the daemon's ``control_*`` methods, so
adding one to the CLI needs no new wire type.  Results can be large (the online list
of a busy gateway), so they travel in ``BigUnicode``, split across AMP values.
"""

from twisted.protocols import amp

CHUNK = 60000


class BigUnicode(amp.Argument):
    """Text of any length, stored as numbered AMP values of at most 60000 bytes."""

    def toBox(self, name, strings, objects, proto):
        data = objects[name.decode()].encode("utf-8")
        chunks = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]
        strings[name] = str(len(chunks)).encode()
        for i, chunk in enumerate(chunks):
            strings[name + b".%d" % i] = chunk

    def fromBox(self, name, strings, objects, proto):
        count = int(strings[name])
        data = b"".join(strings[name + b".%d" % i] for i in range(count))
        objects[name.decode()] = data.decode("utf-8")


class ControlError(Exception):
    """The daemon refused an operation; the message is for the user, as one line."""


class Call(amp.Command):
    arguments = [(b"op", amp.Unicode()), (b"args", BigUnicode())]
    response = [(b"result", BigUnicode())]
    errors = {ControlError: b"CONTROL_ERROR"}
