"""Write paths for orgs and API keys."""
import hashlib
from decimal import Decimal
import secrets
import string

from django.conf import settings
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


# --- cost and countries (README "Cost and countries"): the org's limits --------------------------------------

UNSET = object()
LIMIT_FIELDS = ("home_country", "allowed_countries", "monthly_spend_cap", "country_spend_caps", "pumping_limit",
                "price_overrides")


def _country(code, *, name: str) -> str:
    from sms.pricing import valid_country_code

    text = str(code or "").strip().upper()
    if not valid_country_code(text):
        raise ValidationFailed(f"{name}: {code!r} is not an ISO 3166-1 alpha-2 country code (e.g. US, GB).",
                               code="invalid_country")
    return text


def _amount(raw, *, name: str, places: int = 4):
    from sms.pricing import parse_amount

    try:
        return parse_amount(raw, name=name, places=places)
    except ValueError as exc:
        raise ValidationFailed(str(exc), code="invalid_amount") from None


def org_limits_clean(*, countries=UNSET, home_country=UNSET, monthly_spend_cap=UNSET, country_caps=UNSET,
                     pumping_limit=UNSET, price_overrides=UNSET) -> dict:
    """Validate limit changes into Org field values. UNSET leaves a field alone; None clears a cap or limit.
    countries: list of codes (replaces the list); country_caps: {code: amount | None} (None removes that cap,
    merged into the current caps by the caller); amounts are Decimals or decimal strings, ≤ 4 places."""
    changes: dict = {}
    if countries is not UNSET:
        codes = [_country(c, name="countries") for c in (countries or [])]
        changes["allowed_countries"] = list(dict.fromkeys(codes))
    if home_country is not UNSET:
        changes["home_country"] = _country(home_country, name="home_country")
    if monthly_spend_cap is not UNSET:
        changes["monthly_spend_cap"] = None if monthly_spend_cap is None else _amount(
            monthly_spend_cap, name="monthly spend cap")
    if country_caps is not UNSET:
        changes["country_spend_caps"] = {
            _country(code, name="country cap"): (None if value is None else _amount(value, name=f"the {code} cap"))
            for code, value in (country_caps or {}).items()}
    if pumping_limit is not UNSET:
        if pumping_limit is not None and (isinstance(pumping_limit, bool) or not isinstance(pumping_limit, int)
                                          or not 1 <= pumping_limit <= 1_000_000):
            raise ValidationFailed("The pumping limit must be a whole number from 1 to 1000000 (sends per hour "
                                   "to one number range).", code="invalid_pumping_limit")
        changes["pumping_limit"] = pumping_limit
    if price_overrides is not UNSET:
        changes["price_overrides"] = {
            _country(code, name="price override"): _amount(value, name=f"the {code} price", places=5)
            for code, value in (price_overrides or {}).items()}
    return changes


def org_limits_set(*, org: Org, actor: Actor = _SYSTEM, context: RequestContext | None = None,
                   merge_country_caps: bool = True, **limits) -> Org:
    """Change an org's destination countries, spend caps, pumping limit or negotiated prices (validated by
    org_limits_clean), audited as `org.limits_update` with the old and new values. Country caps given
    with merge_country_caps are merged into the current ones (a None value removes that country's cap)."""
    from sms.pricing import amount_str

    changes = org_limits_clean(**limits)
    with transaction.atomic():
        org = Org.objects.select_for_update().get(pk=org.pk)
        if "country_spend_caps" in changes:
            caps = dict(org.country_spend_caps or {}) if merge_country_caps else {}
            for code, value in changes["country_spend_caps"].items():
                if value is None:
                    caps.pop(code, None)
                else:
                    caps[code] = amount_str(value)
            changes["country_spend_caps"] = dict(sorted(caps.items()))
        if "price_overrides" in changes:
            changes["price_overrides"] = {k: amount_str(v) for k, v in sorted(changes["price_overrides"].items())}

        def shown(field, value):
            return amount_str(value) if field == "monthly_spend_cap" and value is not None else value

        diff = {f: {"from": shown(f, getattr(org, f)), "to": shown(f, v)} for f, v in changes.items()
                if shown(f, getattr(org, f)) != shown(f, v)}
        if not diff:
            return org
        for field, value in changes.items():
            setattr(org, field, value)
        org.save(update_fields=list(changes))
        audit_record(org=org, actor=actor, action="org.limits_update", resource_type="org", resource_id=org.pk,
                     context=context, details={"changes": diff})
    return org


def org_limits(org: Org) -> dict:
    """The org's limits as set_org_limits --json prints them."""
    from sms.pricing import amount_str

    return {"org_id": str(org.pk), "countries": org.destination_countries,
            "monthly_spend_cap": amount_str(org.monthly_spend_cap),
            "country_caps": {k: amount_str(Decimal(str(v))) for k, v in sorted((org.country_spend_caps or {}).items())},
            "pumping_limit": org.pumping_limit if org.pumping_limit is not None else settings.SMS_PUMPING_LIMIT}
