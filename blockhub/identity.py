"""A hub's or gateway's identity: a BIP39 recovery phrase and the Ed25519 key it yields.

Pure code: no files, no clock.  ``blockhub.keystore`` seals the phrase on disk.
"""

import functools

import attrs
from mnemonic import Mnemonic
from nacl.public import PrivateKey, PublicKey
from nacl.signing import SigningKey, VerifyKey

from blockhub import slip10
from blockhub.errors import UserError
from blockhub.ids import decode_id, encode_id

_WORDS_TO_STRENGTH = {12: 128, 24: 256}
_english = Mnemonic("english")


class BadPhrase(UserError):
    """A recovery phrase with unknown words, a wrong length or a bad checksum."""


def new_phrase(words: int = 12) -> str:
    """Generate a fresh English BIP39 recovery phrase of 12 or 24 words."""
    if words not in _WORDS_TO_STRENGTH:
        raise UserError("--words must be 12 or 24")
    return _english.generate(strength=_WORDS_TO_STRENGTH[words])


def normalize_phrase(phrase: str) -> str:
    """Check a typed-in phrase and return it in canonical form, or raise ``BadPhrase``."""
    words = phrase.lower().split()
    if not words:
        raise BadPhrase("the recovery phrase is empty")
    unknown = [w for w in words if w not in _english.wordlist]
    if unknown:
        raise BadPhrase("not in the BIP39 English word list: " + ", ".join(unknown[:5]))
    if len(words) not in (12, 15, 18, 21, 24):
        raise BadPhrase(f"a recovery phrase has 12 or 24 words, this one has {len(words)}")
    canonical = " ".join(words)
    if not _english.check(canonical):
        raise BadPhrase("the recovery phrase checksum does not match (a word is wrong "
                        "or out of order)")
    return canonical


@attrs.frozen(repr=False)
class Identity:
    """The signing key of one hub or gateway.  ``repr`` never shows the secret."""

    signing_key: SigningKey

    @classmethod
    def from_phrase(cls, phrase: str) -> "Identity":
        seed = Mnemonic.to_seed(normalize_phrase(phrase), passphrase="")
        key, _chain = slip10.derive(seed, slip10.IDENTITY_PATH)
        return cls(SigningKey(key))

    @functools.cached_property
    def public_key(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    @functools.cached_property
    def id(self) -> str:
        """Made once: it is asked for in every frame a hub or gateway signs or sends."""
        return encode_id(self.public_key)

    @property
    def private_seed(self) -> bytes:
        """The raw 32-byte Ed25519 private seed (for the TLS certificate key)."""
        return bytes(self.signing_key)

    def sign(self, data: bytes) -> bytes:
        return self.signing_key.sign(data).signature

    def box_key(self) -> PrivateKey:
        """The X25519 key used to open sealed boxes addressed to this identity."""
        return self.signing_key.to_curve25519_private_key()

    def __repr__(self) -> str:
        return f"<Identity {self.id}>"


def verify_key_for(hub_id: str) -> VerifyKey:
    """The Ed25519 verify key named by a text id."""
    return VerifyKey(decode_id(hub_id))


def box_public_key_for(hub_id: str) -> PublicKey:
    """The X25519 public key to seal a box to the holder of ``hub_id``."""
    return verify_key_for(hub_id).to_curve25519_public_key()
