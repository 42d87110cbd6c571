"""AES-256-GCM credentials (sms/crypto.py): fresh nonce, authenticated, bound to the org, rotatable."""
import base64
import io
import json
import uuid

import pytest
from django.core.management import call_command

from sms import crypto
from sms.models import ProviderAccount
from tests.factories import TEST_AUTH_TOKEN, OrgFactory, ProviderAccountFactory

KEY_A = base64.b64encode(b"A" * 32).decode()
KEY_B = base64.b64encode(b"B" * 32).decode()
KEY_C = base64.b64encode(b"C" * 32).decode()
ORG = uuid.uuid4()


@pytest.fixture(autouse=True)
def _keys(settings):
    settings.SMS_ENCRYPTION_KEYS = [KEY_A]


def parts(token: str) -> tuple[str, str, bytes]:
    version, kid, payload = token.split(":", 2)
    return version, kid, base64.b64decode(payload)


def test_round_trip():
    for secret in ["a", TEST_AUTH_TOKEN, "ünïcødé ✓", "x" * 5000]:
        assert crypto.decrypt(crypto.encrypt(secret, org_id=ORG), org_id=ORG) == secret


def test_stored_form_is_versioned_with_the_key_id_and_hides_the_plaintext():
    token = crypto.encrypt(TEST_AUTH_TOKEN, org_id=ORG)
    version, kid, blob = parts(token)
    assert version == "v1"
    assert kid == crypto.key_id(b"A" * 32) == crypto.newest_key_id()
    assert len(blob) == crypto.NONCE_BYTES + len(TEST_AUTH_TOKEN) + 16  # nonce + ciphertext + GCM tag
    assert TEST_AUTH_TOKEN.encode() not in blob and TEST_AUTH_TOKEN not in token


def test_every_encryption_uses_a_fresh_nonce():
    tokens = [crypto.encrypt("same secret", org_id=ORG) for _ in range(200)]
    nonces = {parts(t)[2][: crypto.NONCE_BYTES] for t in tokens}
    assert len(nonces) == 200
    assert len(set(tokens)) == 200


@pytest.mark.parametrize("position", [0, 5, crypto.NONCE_BYTES, crypto.NONCE_BYTES + 3, -1])
def test_a_tampered_byte_fails_to_decrypt(position):
    version, kid, blob = parts(crypto.encrypt(TEST_AUTH_TOKEN, org_id=ORG))
    flipped = bytearray(blob)
    flipped[position] ^= 0x01
    token = f"{version}:{kid}:{base64.b64encode(bytes(flipped)).decode()}"
    with pytest.raises(crypto.DecryptionError, match="does not authenticate"):
        crypto.decrypt(token, org_id=ORG)


@pytest.mark.parametrize("token", ["", "garbage", "v1:abc", "v1:deadbeef:!!!notbase64", "v2:x:AAAA",
                                   "v1:deadbeef:" + base64.b64encode(b"short").decode(), None])
def test_malformed_ciphertext_is_a_decryption_error_not_a_crash(token):
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token, org_id=ORG)


def test_ciphertext_moved_to_another_org_fails():
    token = crypto.encrypt(TEST_AUTH_TOKEN, org_id=ORG)
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token, org_id=uuid.uuid4())


@pytest.mark.django_db
def test_credential_row_copied_onto_another_org_cannot_be_read():
    mine = ProviderAccountFactory()
    other = ProviderAccountFactory()
    ProviderAccount.objects.filter(pk=other.pk).update(auth_token_encrypted=mine.auth_token_encrypted)
    other.refresh_from_db()
    assert mine.auth_token() == TEST_AUTH_TOKEN
    with pytest.raises(crypto.DecryptionError):
        other.auth_token()


def test_rotation_new_key_encrypts_old_key_still_decrypts(settings):
    old = crypto.encrypt(TEST_AUTH_TOKEN, org_id=ORG)
    settings.SMS_ENCRYPTION_KEYS = [KEY_B, KEY_A]  # newest first
    new = crypto.encrypt(TEST_AUTH_TOKEN, org_id=ORG)
    assert parts(new)[1] == crypto.key_id(b"B" * 32) != parts(old)[1]
    assert crypto.decrypt(old, org_id=ORG) == crypto.decrypt(new, org_id=ORG) == TEST_AUTH_TOKEN
    assert crypto.needs_rotation(old) and not crypto.needs_rotation(new)


def test_a_removed_key_names_the_setting(settings):
    old = crypto.encrypt(TEST_AUTH_TOKEN, org_id=ORG)
    settings.SMS_ENCRYPTION_KEYS = [KEY_B]
    with pytest.raises(crypto.DecryptionError, match="SMS_ENCRYPTION_KEYS"):
        crypto.decrypt(old, org_id=ORG)


@pytest.mark.django_db
def test_rotate_encryption_key_reencrypts_every_credential_under_the_newest_key(settings):
    accounts = [ProviderAccountFactory(org=OrgFactory()) for _ in range(3)]
    before = {a.pk: a.auth_token_encrypted for a in accounts}
    settings.SMS_ENCRYPTION_KEYS = [KEY_C, KEY_A]
    out = io.StringIO()
    call_command("rotate_encryption_key", "--json", stdout=out)
    assert json.loads(out.getvalue()) == {"rotated": 3, "unchanged": 0, "total": 3}
    assert TEST_AUTH_TOKEN not in out.getvalue()
    settings.SMS_ENCRYPTION_KEYS = [KEY_C]  # the old key can now be dropped
    for account in ProviderAccount.objects.all():
        assert account.auth_token_encrypted != before[account.pk]
        assert parts(account.auth_token_encrypted)[1] == crypto.key_id(b"C" * 32)
        assert account.auth_token() == TEST_AUTH_TOKEN


@pytest.mark.django_db
def test_rotation_is_recorded_in_the_audit_log(settings):
    from audit.models import AuditEntry

    ProviderAccountFactory()
    settings.SMS_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    call_command("rotate_encryption_key", stdout=io.StringIO())
    entry = AuditEntry.objects.get(action="encryption_key.rotate")
    assert entry.details == {"rotated": 1, "unchanged": 0} and entry.org_id is None
