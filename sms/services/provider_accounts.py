"""Provider credentials: set (encrypting the token) and rotate encryption keys."""
import re
from dataclasses import dataclass

from django.db import transaction

from audit.services import Actor, RequestContext, audit_record
from sendora_sms.errors import SendoraError, ValidationFailed
from sms import crypto
from sms.providers import twilio_account
from sms.models import Provider, ProviderAccount
from sms.phones import InvalidPhoneNumber, normalize_phone

ACCOUNT_SID_RE = re.compile(r"^AC[0-9a-fA-F]{32}$")


def validate_account_sid(account_sid: str) -> str:
    account_sid = (account_sid or "").strip()
    if not ACCOUNT_SID_RE.match(account_sid):
        raise ValidationFailed("The Account SID must be 'AC' followed by 32 hexadecimal characters.",
                               code="invalid_account_sid")
    return account_sid


def provider_account_set_twilio(*, org, account_sid: str, from_number: str, auth_token: str | None = None,
                                actor: Actor, context: RequestContext | None = None) -> ProviderAccount:
    """Create or update the org's Twilio credentials. A blank auth_token keeps the stored one."""
    account_sid = validate_account_sid(account_sid)
    try:
        from_number = normalize_phone(from_number)
    except InvalidPhoneNumber as exc:
        raise ValidationFailed("The From number is not a valid phone number.", code="invalid_phone_number",
                               details={"field": "from_number"}) from exc
    token = (auth_token or "").strip()
    with transaction.atomic():
        account = ProviderAccount.objects.select_for_update().filter(org=org).first()
        if account is None and not token:
            raise ValidationFailed("An auth token is required the first time credentials are set.",
                                   code="auth_token_required")
        if account is None:
            account = ProviderAccount(org=org, provider=Provider.TWILIO)
        account.account_sid = account_sid
        account.from_number = from_number
        if token:
            account.auth_token_encrypted = crypto.encrypt(token, org_id=org.pk)
        account.save()
        audit_record(org=org, actor=actor, action="provider_account.set", resource_type="provider_account",
                     resource_id=account.pk, context=context,
                     details={"provider": account.provider, "account_sid": account_sid, "from_number": from_number,
                              "auth_token_changed": bool(token)})
    return account


def provider_accounts_rotate_encryption(*, progress=None) -> dict:
    """Re-encrypt every stored credential under the newest key. Returns counts."""
    rotated = unchanged = 0
    ids = list(ProviderAccount.objects.values_list("pk", flat=True))
    for pk in ids:
        with transaction.atomic():
            account = ProviderAccount.objects.select_for_update().get(pk=pk)
            if crypto.needs_rotation(account.auth_token_encrypted):
                plaintext = crypto.decrypt(account.auth_token_encrypted, org_id=account.org_id)
                account.auth_token_encrypted = crypto.encrypt(plaintext, org_id=account.org_id)
                account.save(update_fields=["auth_token_encrypted", "updated_at"])
                rotated += 1
            else:
                unchanged += 1
        if progress:
            progress(rotated + unchanged, len(ids))
    audit_record(org=None, actor=Actor.system("rotate_encryption_key"), action="encryption_key.rotate",
                 details={"rotated": rotated, "unchanged": unchanged})
    return {"rotated": rotated, "unchanged": unchanged, "total": len(ids)}


# --- Dashboard checks: test the stored credentials, list the numbers an account owns ----------------

@dataclass(frozen=True)
class ConnectionResult:
    ok: bool
    message: str  # a plain sentence for the operator; never contains the token
    friendly_name: str = ""
    status: str = ""


class ProviderCheckFailed(SendoraError):
    """Twilio could not be asked (bad credentials, unreachable…); the message says why in plain words."""

    code = "provider_check_failed"
    http_status = 502


def _stored_token(org) -> tuple[ProviderAccount | None, str | None]:
    account = ProviderAccount.objects.filter(org=org).first()
    if account is None:
        return None, None
    try:
        return account, account.auth_token()
    except crypto.DecryptionError:
        return account, None


def provider_account_test_connection(*, org) -> ConnectionResult:
    """Fetch the org's Twilio account with the stored credentials and say whether it can send."""
    account, token = _stored_token(org)
    if account is None:
        return ConnectionResult(False, "No Twilio credentials are configured for this org yet.")
    if token is None:
        return ConnectionResult(False, "The stored auth token cannot be decrypted with the configured "
                                       "SMS_ENCRYPTION_KEYS; enter the token again.")
    try:
        info = twilio_account.fetch_account(account_sid=account.account_sid, auth_token=token)
    except twilio_account.TwilioAccountError as exc:
        return ConnectionResult(False, exc.message)
    name = f"“{info.friendly_name}” " if info.friendly_name else ""
    if info.status and info.status != "active":
        return ConnectionResult(False, f"Connected, but the Twilio account {name}({account.account_sid}) is "
                                       f"{info.status}; it cannot send messages.",
                                friendly_name=info.friendly_name, status=info.status)
    return ConnectionResult(True, f"Connected to Twilio account {name}({account.account_sid}), status "
                                  f"{info.status or 'active'}.",
                            friendly_name=info.friendly_name, status=info.status)


def provider_account_list_numbers(*, account_sid: str, auth_token: str | None, org) -> list[str]:
    """The SMS-capable numbers the account owns. A blank auth_token uses the org's stored token.

    Raises ValidationFailed for a malformed SID or a missing token, ProviderCheckFailed when Twilio
    cannot be asked (its reason in plain words)."""
    account_sid = validate_account_sid(account_sid)
    token = (auth_token or "").strip()
    if not token:
        account, token = _stored_token(org)
        if account is None:
            raise ValidationFailed("Enter the auth token to fetch the account's numbers.", code="auth_token_required")
        if token is None:
            raise ValidationFailed("The stored auth token cannot be decrypted; enter the token again.",
                                   code="auth_token_required")
    try:
        return twilio_account.list_sms_numbers(account_sid=account_sid, auth_token=token)
    except twilio_account.TwilioAccountError as exc:
        raise ProviderCheckFailed(exc.message) from None
