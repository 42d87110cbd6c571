"""Write paths for orgs and API keys."""
import hashlib
import secrets
import string

from django.db import transaction
from django.utils import timezone

from audit.services import Actor, RequestContext, audit_record
from orgs import key_cache
from orgs.models import ApiKey, KeyMode, Membership, Org, Role
from orgs.plans import Plan
from sendora_sms.errors import ValidationFailed

_ALPHABET = string.ascii_letters + string.digits
KEY_BODY_LENGTH = 32
VISIBLE_PREFIX_LENGTH = 12
# Touch last_used_at at most this often per key, so authentication is not a write per request.
LAST_USED_RESOLUTION_SECONDS = 60


def hash_api_key(raw_key: str) -> str:
    """Keys carry 190 bits of randomness, so a fast hash is sufficient (no need for a slow KDF)."""
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


# Org fields an operator may change after creation (org_update); plan/quota/rate are validated like org_create.
ORG_EDITABLE_FIELDS = ("name", "plan", "monthly_quota_override", "send_rate_override", "help_text", "opt_out_text",
                       "opt_out_confirmation_enabled")
_SYSTEM = Actor.system("operator")


def _validate_org_fields(*, name: str, plan: str, monthly_quota: int | None, send_rate: int | None) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("The org name must not be empty.", code="invalid_name")
    if len(name) > Org._meta.get_field("name").max_length:
        raise ValidationFailed("The org name must be at most 200 characters.", code="invalid_name")
    if plan not in dict(Plan.CHOICES):
        raise ValidationFailed(f"Unknown plan {plan!r}; choose one of free, starter, growth, enterprise.", code="invalid_plan")
    for label, value in (("quota", monthly_quota), ("rate", send_rate)):
        if value is not None and value < 0:
            raise ValidationFailed(f"{label} must not be negative.", code=f"invalid_{label}")
    return name


def org_create(*, name: str, plan: str = Plan.STARTER, monthly_quota: int | None = None,
               send_rate: int | None = None, help_text: str = "", opt_out_text: str = "",
               opt_out_confirmation_enabled: bool = True, actor: Actor = _SYSTEM,
               context: RequestContext | None = None) -> Org:
    name = _validate_org_fields(name=name, plan=plan, monthly_quota=monthly_quota, send_rate=send_rate)
    with transaction.atomic():
        org = Org.objects.create(name=name, plan=plan, monthly_quota_override=monthly_quota,
                                 send_rate_override=send_rate, help_text=help_text, opt_out_text=opt_out_text,
                                 opt_out_confirmation_enabled=opt_out_confirmation_enabled)
        audit_record(org=org, actor=actor, action="org.create", resource_type="org", resource_id=org.pk,
                     context=context, details={"plan": plan, "monthly_quota": monthly_quota, "send_rate": send_rate})
    return org


def org_update(*, org: Org, changes: dict, actor: Actor, context: RequestContext | None = None) -> Org:
    """Apply operator edits (ORG_EDITABLE_FIELDS only), validated like org_create, and audit them."""
    unknown = set(changes) - set(ORG_EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed(f"These org fields cannot be changed: {', '.join(sorted(unknown))}.",
                               code="invalid_field")
    merged = {f: changes.get(f, getattr(org, f)) for f in ("name", "plan", "monthly_quota_override",
                                                          "send_rate_override")}
    name = _validate_org_fields(name=merged["name"], plan=merged["plan"], monthly_quota=merged["monthly_quota_override"],
                                send_rate=merged["send_rate_override"])
    if "name" in changes:
        changes = {**changes, "name": name}
    if not changes:
        return org
    with transaction.atomic():
        for field, value in changes.items():
            setattr(org, field, value)
        org.save(update_fields=list(changes))
        audit_record(org=org, actor=actor, action="org.update", resource_type="org", resource_id=org.pk,
                     context=context, details={"fields": sorted(changes)})
    return org


def membership_set(*, org: Org, user, role: str = Role.MEMBER) -> Membership:
    membership, _ = Membership.objects.update_or_create(org=org, user=user, defaults={"role": role})
    return membership


def api_key_create(*, org: Org, role: str = Role.MEMBER, mode: str = KeyMode.TEST, publishable: bool = False,
                   name: str = "", actor: Actor = _SYSTEM, context: RequestContext | None = None
                   ) -> tuple[ApiKey, str]:
    """Create a key; returns (ApiKey, raw_key). The raw key exists only in this return value."""
    if role not in (Role.ADMIN, Role.MEMBER):
        raise ValidationFailed("role must be admin or member.", code="invalid_role")
    if mode not in (KeyMode.PROD, KeyMode.TEST):
        raise ValidationFailed("mode must be prod or test.", code="invalid_mode")
    kind = "pk" if publishable else "sk"
    raw = f"{kind}_{mode}_" + "".join(secrets.choice(_ALPHABET) for _ in range(KEY_BODY_LENGTH))
    with transaction.atomic():
        key = ApiKey.objects.create(org=org, role=role, mode=mode, publishable=publishable, name=name,
                                    prefix=raw[:VISIBLE_PREFIX_LENGTH], key_hash=hash_api_key(raw))
        audit_record(org=org, actor=actor, action="api_key.create", resource_type="api_key", resource_id=key.pk,
                     context=context, details={"role": role, "mode": mode, "publishable": publishable,
                                               "prefix": key.prefix})
    return key, raw


def api_key_revoke(*, api_key: ApiKey, actor: Actor = _SYSTEM, context: RequestContext | None = None) -> ApiKey:
    """Revoke once; revoking a revoked key changes nothing and records nothing."""
    with transaction.atomic():
        revoked = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if revoked:
            audit_record(org=api_key.org_id, actor=actor, action="api_key.revoke", resource_type="api_key",
                         resource_id=api_key.pk, context=context, details={"prefix": api_key.prefix})
    key_cache.clear()  # this process refuses the key at once; others within API_KEY_CACHE_SECONDS
    api_key.refresh_from_db(fields=["revoked_at"])
    return api_key


def api_key_touch(*, api_key: ApiKey) -> None:
    """Record use, at most once per LAST_USED_RESOLUTION_SECONDS (one conditional UPDATE)."""
    now = timezone.now()
    if api_key.last_used_at and (now - api_key.last_used_at).total_seconds() < LAST_USED_RESOLUTION_SECONDS:
        return
    with transaction.atomic():
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now
