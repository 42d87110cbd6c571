"""Provider credentials: set (encrypting the token) and rotate encryption keys."""
import re
from dataclasses import dataclass

from django.db import transaction

from audit.services import Actor, RequestContext, audit_record
from sendora_sms.errors import SendoraError, ValidationFailed
from sms import crypto
from sms.providers import REGISTRY, adapter_class, twilio_account
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
        account = ProviderAccount.objects.select_for_update().filter(org=org, provider=Provider.TWILIO).first()
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
    """Re-encrypt every stored credential of every provider (Twilio's auth token, the other providers'
    secrets) under the newest key. Returns counts (of accounts)."""
    rotated = unchanged = 0
    ids = list(ProviderAccount.objects.values_list("pk", flat=True))
    for pk in ids:
        with transaction.atomic():
            account = ProviderAccount.objects.select_for_update().get(pk=pk)
            changed = []
            if account.auth_token_encrypted and crypto.needs_rotation(account.auth_token_encrypted):
                plaintext = crypto.decrypt(account.auth_token_encrypted, org_id=account.org_id)
                account.auth_token_encrypted = crypto.encrypt(plaintext, org_id=account.org_id)
                changed.append("auth_token_encrypted")
            if account.secrets_encrypted and crypto.needs_rotation(account.secrets_encrypted):
                context = secrets_context(account.provider)
                plaintext = crypto.decrypt(account.secrets_encrypted, org_id=account.org_id, context=context)
                account.secrets_encrypted = crypto.encrypt(plaintext, org_id=account.org_id, context=context)
                changed.append("secrets_encrypted")
            if changed:
                account.save(update_fields=[*changed, "updated_at"])
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
    account = ProviderAccount.objects.filter(org=org, provider=Provider.TWILIO).first()
    if account is None:
        return None, None
    try:
        return account, account.auth_token()
    except crypto.DecryptionError:
        return account, None


def provider_account_test_connection(*, org, provider: str = Provider.TWILIO) -> ConnectionResult:
    """A cheap authenticated read with the stored credentials of the org's account of `provider`; says
    whether it can send (the adapter's `test_connection`)."""
    if provider != Provider.TWILIO:
        return _test_other(org=org, provider=provider)
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


def _test_other(*, org, provider: str) -> ConnectionResult:
    from sms.providers import adapter_class

    account = ProviderAccount.objects.filter(org=org, provider=provider).first()
    name = dict(Provider.ACCOUNT_CHOICES).get(provider, provider)
    if account is None:
        return ConnectionResult(False, f"No {name} credentials are configured for this org yet.")
    try:
        adapter = adapter_class(provider).from_account(account)
    except (crypto.DecryptionError, ValueError):
        return ConnectionResult(False, "The stored secrets cannot be decrypted with the configured "
                                       "SMS_ENCRYPTION_KEYS; enter them again.")
    ok, message = adapter.test_connection()
    return ConnectionResult(ok, message)


# --- Every provider: one account per provider, encrypted secrets, sender, priority, enabled ----------------

# Each adapter declares its secrets (sms/providers/*.py `secret_fields`): a new provider adds none here.
SECRET_FIELDS = {name: adapter_class(name).secret_fields for name in REGISTRY}
SINCH_REGIONS = ("us", "eu", "au", "br", "ca")
_ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_SERVICE_PLAN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def secrets_context(provider: str) -> str:
    """Associated data binding a secrets ciphertext to its provider (besides the org)."""
    return f"provider:{provider}"


def _phone_sender(value: str, field: str) -> str:
    try:
        return normalize_phone(value)
    except InvalidPhoneNumber as exc:
        raise ValidationFailed(f"The {field} is not a valid phone number.", code="invalid_phone_number",
                               details={"field": field}) from exc


def _validate_sender(provider: str, sender: str) -> str:
    sender = (sender or "").strip()
    if provider == Provider.MESSAGEBIRD and _ALPHANUMERIC_SENDER.match(sender):
        return sender  # an alphanumeric originator (at most 11 characters)
    return _phone_sender(sender, "originator" if provider == Provider.MESSAGEBIRD else "from_number")


def provider_account_set(*, org, provider: str, sender: str, account_id: str = "", region: str = "",
                         secrets: dict | None = None, priority: int | None = None, enabled: bool | None = None,
                         actor: Actor, context: RequestContext | None = None) -> ProviderAccount:
    """Create or update the org's account of `provider`. Secrets left blank keep the stored ones (all are
    required the first time). Twilio goes through provider_account_set_twilio's rules."""
    if provider not in SECRET_FIELDS:
        raise ValidationFailed("Unknown provider; use twilio, messagebird or sinch.", code="invalid_provider")
    if priority is not None and not (1 <= int(priority) <= 100):
        raise ValidationFailed("The priority must be between 1 and 100.", code="invalid_priority")
    secrets = {k: (v or "").strip() for k, v in (secrets or {}).items() if k in SECRET_FIELDS[provider]}
    if provider == Provider.TWILIO:
        account = provider_account_set_twilio(org=org, account_sid=account_id, from_number=sender,
                                              auth_token=secrets.get("auth_token"), actor=actor, context=context)
        return _set_routing(account, priority=priority, enabled=enabled)
    sender = _validate_sender(provider, sender)
    if provider == Provider.SINCH:
        account_id = (account_id or "").strip()
        if not _SERVICE_PLAN_ID.match(account_id):
            raise ValidationFailed("The service plan id is required (letters and digits, from the Sinch dashboard).",
                                   code="invalid_service_plan_id", details={"field": "service_plan_id"})
        region = (region or "").strip().lower()
        if region not in SINCH_REGIONS:
            raise ValidationFailed(f"The region must be one of {', '.join(SINCH_REGIONS)}.", code="invalid_region",
                                   details={"field": "region"})
    else:
        account_id, region = "", ""
    with transaction.atomic():
        account = ProviderAccount.objects.select_for_update().filter(org=org, provider=provider).first()
        stored = account.secrets() if account is not None and account.secrets_encrypted else {}
        merged = {name: secrets.get(name) or stored.get(name, "") for name in SECRET_FIELDS[provider]}
        missing = [name for name, value in merged.items() if not value]
        if missing:
            raise ValidationFailed(f"Required the first time: {', '.join(missing)}.", code="secret_required",
                                   details={"fields": missing})
        if account is None:
            account = ProviderAccount(org=org, provider=provider)
        account.account_sid = account_id
        account.region = region
        account.from_number = sender
        changed = sorted(name for name in SECRET_FIELDS[provider] if secrets.get(name))
        if changed or not account.secrets_encrypted:
            import json

            account.secrets_encrypted = crypto.encrypt(json.dumps(merged), org_id=org.pk,
                                                       context=secrets_context(provider))
        if priority is not None:
            account.priority = int(priority)
        if enabled is not None:
            account.enabled = bool(enabled)
        account.save()
        audit_record(org=org, actor=actor, action="provider_account.set", resource_type="provider_account",
                     resource_id=account.pk, context=context,
                     details={"provider": provider, "account_id": account_id, "region": region, "sender": sender,
                              "priority": account.priority, "enabled": account.enabled, "secrets_changed": changed})
    return account


def _set_routing(account: ProviderAccount, *, priority: int | None, enabled: bool | None) -> ProviderAccount:
    fields = []
    if priority is not None:
        account.priority = int(priority)
        fields.append("priority")
    if enabled is not None:
        account.enabled = bool(enabled)
        fields.append("enabled")
    if fields:
        account.save(update_fields=[*fields, "updated_at"])
    return account


def provider_webhook_urls(*, org_id, provider: str) -> dict:
    """The URLs to paste into the provider's console (SMS_PUBLIC_BASE_URL + the webhook paths)."""
    from django.conf import settings

    base = f"{settings.SMS_PUBLIC_BASE_URL}/api/v1/sms/webhooks/{provider}/{org_id}"
    return {"inbound": base, "status": base + "/status"}
