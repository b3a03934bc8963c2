"""Who gets into the manhole: public keys from the ``authorized_keys`` file, read afresh
at every login, for any user name, with one log line per accepted or refused login.

Only a public-key checker exists, so the server never offers passwords or
keyboard-interactive.  A keys file that has become unusable refuses everyone until it
is fixed.  The log names users and key fingerprints, never key material.
"""

from pathlib import Path

from twisted.conch.checkers import IAuthorizedKeysDB, SSHPublicKeyChecker
from twisted.conch.error import ValidPublicKey
from twisted.conch.ssh import keys
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import ISSHPrivateKey
from twisted.cred.error import UnauthorizedLogin
from twisted.logger import Logger
from zope.interface import implementer

from blockhub.errors import UserError
from blockhub.manhole.keyfiles import read_authorized_keys, ssh_fingerprint

log = Logger(namespace="blockhub.manhole")


@implementer(IAuthorizedKeysDB)
class AuthorizedKeysFile:
    """The keys allowed in, read afresh from the file at every login, for any user name.

    A file that has become unusable refuses everyone (and says why in the log).
    """

    def __init__(self, path):
        self.path = Path(path).expanduser()

    def getAuthorizedKeys(self, avatarId):
        try:
            found, _ = read_authorized_keys(self.path)
        except UserError as e:
            log.error("manhole login refused for everyone: {problem}", problem=str(e))
            return ()
        return found


@implementer(ICredentialsChecker)
class LoggedKeyChecker:
    """``SSHPublicKeyChecker`` plus one log line per accepted or refused login."""

    credentialInterfaces = (ISSHPrivateKey,)

    def __init__(self, keydb):
        self._checker = SSHPublicKeyChecker(keydb)

    def requestAvatarId(self, credentials):
        user = credentials.username.decode("utf-8", "replace")
        d = self._checker.requestAvatarId(credentials)
        d.addCallbacks(self._accepted, self._refused,
                       callbackArgs=(user, credentials), errbackArgs=(user, credentials))
        return d

    def _accepted(self, avatar_id, user, credentials):
        log.info("manhole login accepted: user {user!r}, key {fingerprint}",
                 user=user, fingerprint=_offered_fingerprint(credentials))
        return avatar_id

    def _refused(self, failure, user, credentials):
        # ValidPublicKey answers the signature-less probe ("would this key do?"): it is
        # how the login goes on, not a refusal.
        if failure.check(UnauthorizedLogin) and not failure.check(ValidPublicKey):
            log.warn("manhole login refused: user {user!r}, key {fingerprint} not authorized",
                     user=user, fingerprint=_offered_fingerprint(credentials))
        return failure


def _offered_fingerprint(credentials) -> str:
    try:
        return ssh_fingerprint(keys.Key.fromString(credentials.blob))
    except Exception:
        return "(unreadable key)"
