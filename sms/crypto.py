"""AES-256-GCM for provider credentials.

Stored form: "v1:<key id>:<base64(nonce ‖ ciphertext+tag)>". The key id says which of
SMS_ENCRYPTION_KEYS (newest first) encrypted it, so keys can rotate: the newest encrypts,
every listed key decrypts. The org id is bound as associated data, so a ciphertext copied
onto another org fails to decrypt.
"""
import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

VERSION = "v1"
NONCE_BYTES = 12  # 96-bit, fresh per encryption


class DecryptionError(Exception):
    """Wrong key, tampered ciphertext or a ciphertext that belongs to another org."""


def key_id(raw_key: bytes) -> str:
    return hashlib.sha256(raw_key).hexdigest()[:8]


def _keys() -> list[tuple[str, bytes]]:
    keys = [base64.b64decode(k) for k in settings.SMS_ENCRYPTION_KEYS]
    return [(key_id(k), k) for k in keys]


def _aad(org_id, context: str = "") -> bytes:
    """Associated data: the org id, plus a context (e.g. "provider:sinch") when given — a ciphertext
    copied onto another org, or onto another provider's account of the same org, fails to decrypt.
    Twilio's auth token keeps the org-only form it has always had (no context)."""
    return (f"sendora-sms:org:{org_id}" + (f":{context}" if context else "")).encode()


def encrypt(plaintext: str, *, org_id, context: str = "") -> str:
    kid, key = _keys()[0]
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), _aad(org_id, context))
    return f"{VERSION}:{kid}:{base64.b64encode(nonce + sealed).decode()}"


def decrypt(token: str, *, org_id, context: str = "") -> str:
    try:
        version, kid, payload = token.split(":", 2)
        blob = base64.b64decode(payload, validate=True)
    except (ValueError, AttributeError) as exc:
        raise DecryptionError("malformed ciphertext") from exc
    if version != VERSION:
        raise DecryptionError(f"unknown ciphertext version {version!r}")
    if len(blob) < NONCE_BYTES + 16:  # nonce + GCM tag at least; AESGCM would raise ValueError, not InvalidTag
        raise DecryptionError("malformed ciphertext (too short)")
    key = dict(_keys()).get(kid)
    if key is None:
        raise DecryptionError(f"no configured key has id {kid}; is SMS_ENCRYPTION_KEYS missing an old key?")
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _aad(org_id, context)).decode("utf-8")
    except InvalidTag as exc:
        raise DecryptionError("ciphertext does not authenticate (tampered, or another org's)") from exc


def newest_key_id() -> str:
    """The id of the key new ciphertexts are encrypted under (the first of SMS_ENCRYPTION_KEYS)."""
    return _keys()[0][0]


def needs_rotation(token: str) -> bool:
    """True when the token was not encrypted under the newest key."""
    return token.split(":", 2)[1:2] != [_keys()[0][0]]
