"""A listening service that reports the address it got and fails loudly at start.

Tests and operators pass ``port 0`` and need to learn the real port, so the bound
address is handed to ``on_listening`` (the services record it in their status).  A
listen that fails at start (address in use, bad interface) stops the daemon with one
clear line instead of a traceback.
"""

from twisted.application.service import Service
from twisted.internet.endpoints import serverFromString
from twisted.python.failure import Failure

from blockhub.hubinfo import format_address
from blockhub.net.reuse import allow_reuse


class ListeningService(Service):
    def __init__(self, reactor, description: str, factory, on_listening=None, what="listen",
                 shared: bool = False):
        self.reactor = reactor
        self.description = description
        self.factory = factory
        self.on_listening = on_listening
        self.what = what
        # Let sockets of ours dial from the port too (a hub's punches, net/reuse.py);
        # on_listening is then also told whether that could be set.
        self.shared = shared
        self.port = None
        self.address = None

    def startService(self):
        super().startService()
        try:
            endpoint = serverFromString(self.reactor, self.description)
        except (ValueError, KeyError, TypeError) as e:
            raise SystemExit(f"error: bad --{self.what} endpoint {self.description!r}: {e}")
        outcome = []
        endpoint.listen(self.factory).addBoth(outcome.append)
        if outcome and isinstance(outcome[0], Failure):
            raise SystemExit(f"error: cannot listen on {self.description!r}: "
                             f"{outcome[0].getErrorMessage()}")
        if not outcome:
            raise SystemExit(f"error: endpoint {self.description!r} did not listen at once")
        self.port = outcome[0]
        self.address = format_address(self.port.getHost())
        if self.on_listening is not None and self.shared:
            self.on_listening(self.port.getHost(), allow_reuse(self.port))
        elif self.on_listening is not None:
            self.on_listening(self.port.getHost())

    def stopService(self):
        super().stopService()
        if self.port is not None:
            port, self.port = self.port, None
            return port.stopListening()
