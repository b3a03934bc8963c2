"""What a manhole login gets: Twisted's colored Python prompt over an SSH terminal
session, its globals a copy of the daemon's namespace (one copy per session, so names
set in one session do not leak into another).

An exception prints its traceback in the session.  ``exit()`` or any other
``SystemExit`` ends that session only; the daemon keeps running.
"""

from twisted.conch.insults import insults
from twisted.conch.interfaces import IConchUser
from twisted.conch.manhole import ColoredManhole
from twisted.conch.manhole_ssh import TerminalRealm, TerminalSession
from twisted.cred.portal import IRealm
from zope.interface import implementer


class Prompt(ColoredManhole):
    """The prompt; ``SystemExit`` (``exit()``) ends this session, not the daemon."""

    def lineReceived(self, line):
        try:
            super().lineReceived(line)
        except SystemExit:
            self.interpreter.resetBuffer()
            self.terminal.nextLine()
            self.terminal.write(b"SystemExit: closing this session; the daemon keeps running.")
            self.terminal.nextLine()
            self.terminal.loseConnection()


class Session(TerminalSession):
    """Twisted's terminal session, completed: a default size when the client asks for no
    pty (``ssh -T``), window changes recorded, and the client's EOF ending the session
    (both raise ``NotImplementedError`` in Twisted's class)."""

    width, height = 80, 24
    _terminal = None

    def openShell(self, proto):
        self._terminal = self.chainedProtocolFactory()
        self.transportFactory(proto, self._terminal, IConchUser(self.original),
                              self.width, self.height)

    def windowChanged(self, newWindowSize):
        self.height, self.width = newWindowSize[:2]
        shell = getattr(self._terminal, "terminalProtocol", None)
        if shell is not None:
            # Only record the size: RecvLine.terminalSize would also wipe the screen.
            shell.width, shell.height = self.width, self.height

    def eofReceived(self):
        if self._terminal is not None:
            self._terminal.loseConnection()


@implementer(IRealm)  # as Twisted's TerminalRealm does not say it
class Realm(TerminalRealm):
    """Every avatar gets a ``Session`` running a ``Prompt`` over ``namespace``."""

    sessionFactory = Session

    def __init__(self, namespace: dict):
        super().__init__()
        def chained() -> insults.ServerProtocol:
            return insults.ServerProtocol(Prompt, namespace)

        # Twisted types this as the class, though it only ever calls it.
        self.chainedProtocolFactory = chained  # type: ignore[assignment]
