"""An SSH manhole: a Python prompt inside a running daemon, for live inspection.

``manhole_service`` returns a service that listens on a Twisted endpoint and speaks SSH.
Only public-key logins are accepted, against an OpenSSH ``authorized_keys`` file; no
password or keyboard-interactive checker is registered, so the server never offers
those methods.  Any user name is accepted: the key is what authenticates.  A login gets
Twisted's colored Python prompt whose globals are a copy of the namespace the daemon
passed in (one copy per session, so names set in one session do not leak into another).

Choices worth knowing:

- The keys file is parsed when the service is made (a missing, unreadable or unusable
  file is a ``UserError``, reported as a startup error) and again at every login, so a
  key added to or removed from the file takes effect without a restart.  If the file
  becomes unusable while the daemon runs, every login is refused until it is fixed.
- A key line that carries options (``from=``, ``command=``, ``restrict``...) is skipped
  with a warning: the manhole cannot enforce those options, and ignoring them would
  give the key more access than its owner wrote down.  Key types Twisted cannot use
  (security keys, certificates) are skipped the same way.  A line that is not a public
  key at all (a private key, garbage) is an error naming the line, never its content.
- The SSH host key is an Ed25519 key made on first start and kept in
  ``DATA_DIR/manhole_host_key`` (0600), so clients see the same host key after a
  restart.  Its SHA256 fingerprint (public, as ``ssh`` shows it) is logged at start.
- An exception in the session prints its traceback there.  ``exit()`` or any other
  ``SystemExit`` ends that session only; the daemon keeps running.
- Stopping the service drops open sessions (politely, then by force after a grace
  period), so a stopped manhole leaves nothing behind.

Nothing here logs key material: only user names, peer addresses and fingerprints.  Every
module logs under the ``blockhub.manhole`` namespace.

The modules, one job each: ``keyfiles`` (the authorized_keys file, the host key,
fingerprints), ``login`` (who gets in, logged), ``session`` (the prompt a login gets),
``server`` (the SSH factory and connections), ``service`` (all of it as a service).
"""

from blockhub.manhole.keyfiles import (
    HOST_KEY_FILE,
    parse_authorized_keys,
    read_authorized_keys,
    ssh_fingerprint,
)
from blockhub.manhole.login import AuthorizedKeysFile
from blockhub.manhole.service import ManholeService, manhole_service

__all__ = ["HOST_KEY_FILE", "AuthorizedKeysFile", "ManholeService", "manhole_service",
           "parse_authorized_keys", "read_authorized_keys", "ssh_fingerprint"]
