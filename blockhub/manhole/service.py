"""The manhole as a service of a daemon: ``manhole_service`` checks the keys file, loads
or makes the host key, and wires the portal, realm and SSH factory into a listening
service; stopping it stops listening and closes open sessions."""

import ipaddress

from twisted.cred.portal import Portal
from twisted.internet.defer import DeferredList, maybeDeferred
from twisted.logger import Logger

from blockhub.manhole.keyfiles import load_or_create_host_key, read_authorized_keys
from blockhub.manhole.login import AuthorizedKeysFile, LoggedKeyChecker
from blockhub.manhole.server import Factory, format_peer
from blockhub.manhole.session import Realm
from blockhub.net.listening import ListeningService

STOP_GRACE = 5.0  # seconds open sessions get to close when the service stops
log = Logger(namespace="blockhub.manhole")


class ManholeService(ListeningService):
    """The listening SSH service; ``.port`` and ``.address`` are set once started."""

    def stopService(self):
        listening = maybeDeferred(super().stopService)
        closing = self.factory.close_all(STOP_GRACE)
        return DeferredList([listening, closing], fireOnOneErrback=True,
                            consumeErrors=True).addCallback(lambda _: None)


def manhole_service(reactor, endpoint: str, keys_file, data_dir, namespace: dict,
                    on_listening=None) -> ManholeService:
    """An SSH manhole on ``endpoint`` (a Twisted server endpoint string), not yet started.

    Logins: public keys listed in ``keys_file`` (OpenSSH authorized_keys format), any
    user name; passwords and keyboard-interactive are never offered.  The session is a
    Python prompt whose globals are a copy of ``namespace``.  The host key lives in
    ``DATA_DIR/manhole_host_key`` (made on first start, reused afterwards).

    Raises ``UserError`` (one line) when the keys file is missing, unreadable or holds no
    usable key, or when the host key cannot be read or written.

    The bound address: after ``startService`` the returned service's ``.port`` is the
    listening port (``service.port.getHost().port`` is the TCP port number when the
    endpoint asked for port 0) and ``.address`` is ``"HOST:PORT"``; ``on_listening``, if
    given, is called once with ``port.getHost()``.  A failure to listen raises
    ``SystemExit`` with one line, as the daemons' other listeners do.  ``stopService``
    stops listening and closes open sessions; its Deferred fires when all are gone.
    """
    _, skipped = read_authorized_keys(keys_file)
    for reason in skipped:
        log.warn("manhole keys file {path}: {reason}; skipped", path=str(keys_file),
                 reason=reason)
    host_key = load_or_create_host_key(data_dir)
    portal = Portal(Realm(namespace), [LoggedKeyChecker(AuthorizedKeysFile(keys_file))])
    factory = Factory(reactor, portal, host_key)

    def listening(address):
        _warn_if_public(address)
        if on_listening is not None:
            on_listening(address)

    return ManholeService(reactor, endpoint, factory, on_listening=listening, what="manhole")


def _warn_if_public(address) -> None:
    host = getattr(address, "host", None)
    try:
        loopback = ipaddress.ip_address(host).is_loopback if host else True
    except ValueError:
        loopback = True  # not an IP address (a UNIX socket, say): nothing to say
    if not loopback:
        log.warn("the manhole listens on {address}, reachable from other hosts; "
                 "anyone holding an authorized key there can run code in this daemon",
                 address=format_peer(address))
    log.info("manhole listening on {address}", address=format_peer(address))
