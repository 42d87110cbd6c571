"""Cost and countries on the send path (README "Cost and countries"): the calls send_create makes.

Order of decisions (sms/services/sends.py):
  1   validation
  1b  destination country allowed          → 403 country_not_allowed   `destination_check`  (both modes)
  2   provider configured                  → 412
  3   per-org rate limit                   → 429 rate_limited
  3b  pumping velocity (Redis, before the send's transaction; live sends only)
                                           → 429 suspected_pumping     `pumping_guard`
  4/5 suppression, duplicate               (stored; price "0"; nothing reserved)
  6   spend caps, then the quota, in one transaction (a refusal rolls both back)
                                           → 429 spend_cap_exceeded    `spend_reserve`
  7   queued, with its estimated price     `send_price_estimate`

Test-key sends cost nothing: price "0", no meter, no caps, no pumping check (the sandbox sends nowhere).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from django.db import transaction

from orgs.models import KeyMode, Org
from orgs.rate_limits import SendRateCount
from orgs.spend import MONTHLY, spend_adjust, spend_refund, spend_reserve as _meter_reserve, spend_status
from sendora_sms.cache import ScriptStep
from sendora_sms.db import Statement
from sms import pricing
from sms.errors import CountryNotAllowed
from sms.models import EventType, Send
from sms import pumping
from sms.pumping import pumping_check

logger = logging.getLogger("sms.cost")
ZERO = Decimal("0")


def destination_check(*, org: Org, to: str) -> str:
    """The destination's country (ISO alpha-2, or "001" for non-geographic codes); raise
    CountryNotAllowed when it is not on the org's list."""
    country = pricing.country_for(to)
    if country not in org.destination_countries:
        raise CountryNotAllowed(
            f"The org may not send to {country}: allowed destinations are {', '.join(org.destination_countries)}. "
            f"An org admin can change the list (Dashboard → Organisations, or set_org_limits --countries).",
            details={"country": country, "allowed": org.destination_countries})
    return country


def pumping_step(*, org: Org, api_key, to: str, country: str) -> ScriptStep | None:
    """The pumping window of a live send as a Redis step, to be counted in the rate limit's round trip
    (orgs/rate_limits.send_rate_count; decided by `pumping_guard`); None for a test send (not checked)."""
    if api_key.mode == KeyMode.TEST:
        return None
    return pumping.pumping_step(org=org, to=to, country=country)


def pumping_guard(*, org: Org, api_key, to: str, country: str, counted: SendRateCount | None = None) -> None:
    """The pumping velocity check for a live send (sms/pumping.py); test sends are not checked. `counted`:
    the rate limit's round trip that also counted this send's window (`pumping_step`), else counted here."""
    if api_key.mode == KeyMode.TEST:
        return
    if counted is None or (counted.available and counted.then is None):
        pumping_check(org=org, to=to, country=country)
    elif not counted.available:
        pumping.store_unavailable(org, counted.error)
        pumping_check(org=org, to=to, country=country, verdict=None)  # the store failed: open
    else:
        pumping_check(org=org, to=to, country=country, verdict=pumping.verdict_of(counted.then))


def send_price_estimate(send: Send, *, org: Org, country: str) -> None:
    """A queued live send's estimated price: segments × the unit price (Decimal, USD)."""
    send.price_unit = pricing.CURRENCY
    if send.mode == KeyMode.TEST:
        send.price = ZERO
        return
    unit = pricing.unit_price(provider=send.provider, country=country, overrides=org.price_overrides)
    send.price = (unit * send.segments).quantize(pricing.PRICE_PLACES)


def spend_reserve(*, org: Org, send: Send, country: str, before: Sequence[Statement]) -> list[Statement]:
    """Decision 6 (spend): the statements to run with the quota reservation — the caller's own, then the
    send's meter upsert. Raises SpendCapExceeded for a capped org over its cap (the transaction rolls
    back). Thresholds reached (50/80/100 %) are announced once per period with sms.spend_threshold."""
    if send.mode == KeyMode.TEST or not send.price:
        return list(before)
    reservation = _meter_reserve(org=org, send_id=send.pk, country=country, amount=send.price,
                                 at=send.created_at, before=before)
    if reservation.crossings:
        from sms.services.events import event_record

        for crossing in reservation.crossings:
            event_record(org_id=org.pk, type=EventType.SPEND_THRESHOLD, data={
                "threshold": crossing.threshold, "scope": "monthly" if crossing.scope == MONTHLY else "country",
                "country": None if crossing.scope == MONTHLY else crossing.scope,
                "cap": pricing.amount_str(crossing.cap), "spent": pricing.amount_str(crossing.spent),
                "currency": pricing.CURRENCY, "period_start": crossing.period_start.isoformat(),
                "resets_at": crossing.resets_at.isoformat().replace("+00:00", "Z")})
    return reservation.statements


def send_spend_refund(send: Send) -> None:
    """Give back a live send's reserved price (it failed before the provider took it): the meter row,
    and the send's price becomes 0. Runs in the caller's transaction (dispatch), before the quota
    refund — the lock order of orgs/spend.py."""
    if send.mode == KeyMode.TEST:
        return
    row = Send.objects.filter(pk=send.pk).values("price", "to", "created_at").first()
    if not row or not row["price"]:
        return
    spend_refund(org_id=send.org_id, send_id=send.pk, country=pricing.country_for(row["to"]), amount=row["price"],
                 at=row["created_at"])
    Send.objects.filter(pk=send.pk).update(price=ZERO)


def provider_price(raw_price, raw_unit) -> Decimal | None:
    """A provider's reported price as a positive USD Decimal, or None (absent, unparseable, other currency).
    Twilio reports the charge as a negative string ("-0.00790")."""
    if raw_price in (None, ""):
        return None
    if (raw_unit or pricing.CURRENCY).upper() != pricing.CURRENCY:
        return None
    try:
        value = abs(Decimal(str(raw_price).strip()))
    except (InvalidOperation, ValueError):
        return None
    return value.quantize(pricing.PRICE_PLACES) if value.is_finite() else None


def send_price_report(*, send_id, raw_price, raw_unit=None) -> bool:
    """Replace a send's estimated price by the one its provider reported, moving the spend meter by the
    difference. Returns whether the price changed."""
    price = provider_price(raw_price, raw_unit)
    if price is None:
        return False
    with transaction.atomic():
        send = Send.objects.select_for_update().filter(pk=send_id).only(
            "id", "org_id", "to", "price", "mode", "created_at").first()
        if send is None or send.mode == KeyMode.TEST or send.price == price:
            return False
        delta = price - send.price
        Send.objects.filter(pk=send.pk).update(price=price, price_unit=pricing.CURRENCY)
        spend_adjust(org_id=send.org_id, send_id=send.pk, country=pricing.country_for(send.to), delta=delta,
                     at=send.created_at)
    return True


def cost_stats(*, org: Org, mode: str | None, since_day=None, until_day=None) -> dict:
    """`cost` of /sms/stats: live spend in the window, by country (test sends cost nothing)."""
    if mode == KeyMode.TEST:
        return {"amount": "0", "currency": pricing.CURRENCY, "by_country": {}}
    status = spend_status(org=org, since_day=since_day, until_day=until_day)
    return {"amount": pricing.amount_str(status.amount), "currency": pricing.CURRENCY,
            "by_country": {k: pricing.amount_str(v) for k, v in status.by_country.items()}}


# Audit decisions of the refusals this module adds (sms.services.sends._decision_for).
DECISIONS = frozenset({"country_not_allowed", "suspected_pumping", "spend_cap_exceeded"})


def audit_details(error) -> dict:
    """What a refusal's audit entry records beyond its code: the country, the pumping reason, the cap."""
    if error.code not in DECISIONS:
        return {}
    keep = ("country", "range", "limit", "reason", "cap", "scope", "resets_at")
    return {k: v for k, v in (error.details or {}).items() if k in keep and v is not None}
