"""Provider credentials: set (encrypting the token) and rotate encryption keys."""
import re

from django.db import transaction

from audit.services import Actor, RequestContext, audit_record
from sendora_sms.errors import ValidationFailed
from sms import crypto
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
