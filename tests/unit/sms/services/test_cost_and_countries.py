"""Issue #16 (README "Cost and countries"): destination countries, prices, spend caps, refunds, provider prices,
threshold events and the order of decisions — send_create against real PostgreSQL and Redis."""
import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection

from audit.models import AuditEntry
from audit.services import RequestContext
from orgs.errors import QuotaExceededError, SpendCapExceeded
from orgs.models import KeyMode, Role, SpendThresholdMark, SpendUsage
from orgs.spend import spend_refund, spend_status
from sendora_sms.errors import RateLimited
from sms import pricing
from sms.errors import CountryNotAllowed, ProviderNotConfigured
from sms.providers.base import WebhookRequest
from sms.models import Event, Send
from sms.pumping import SuspectedPumping
from sms.selectors import send_stats
from sms.services import cost as cost_module
from sms.services import send_create
from sms.services import sends as sends_module
from sms.services.dispatch import send_fail_unsent
from tests.factories import ApiKeyFactory, ProviderAccountFactory, SuppressionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(org):
    return ApiKeyFactory(org=org, role=Role.MEMBER, mode=KeyMode.PROD)


@pytest.fixture(autouse=True)
def _org_ready(org):
    org.send_rate_override = 10_000
    org.save(update_fields=["send_rate_override"])
    ProviderAccountFactory(org=org)


def create(org, key, to="+15551234567", body="hello", **kw):
    return send_create(org=org, api_key=key, to=to, body=body, context=RequestContext(request_id="r1"), **kw).send


def rejected(org, decision):
    return AuditEntry.objects.filter(org=org, action="sms.send", details__decision=decision)


# --- country detection -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("number", "country"), [
    ("+15551234567", "US"),  # fictional 555: region unknown to libphonenumber → +1's main country
    ("+12125551234", "US"),
    ("+14165551234", "CA"),  # Toronto: NANP, not the US
    ("+16135550123", "CA"),
    ("+18765551234", "JM"),  # +1 876 is Jamaica, not the US
    ("+17875551234", "PR"),
    ("+442079460958", "GB"),
    ("+33612345678", "FR"),
    ("+882123456789", "001"),  # non-geographic: no country, never allowable
])
def test_country_of_a_number(number, country):
    assert pricing.country_for(number) == country


def test_the_product_pages_example_number_sends_from_a_us_only_org(org, key):
    assert org.destination_countries == ["US"]  # default: the home country only
    assert create(org, key, to="+15551234567").status == "queued"


def test_a_caribbean_nanp_number_is_refused_for_a_us_only_org_and_nothing_is_stored(org, key):
    with pytest.raises(CountryNotAllowed) as exc:
        create(org, key, to="+18765551234")
    assert exc.value.http_status == 403 and exc.value.details["country"] == "JM"
    assert not Send.objects.filter(org=org).exists()
    entry = rejected(org, "country_not_allowed").get()
    assert entry.details["country"] == "JM" and entry.details["http_status"] == 403


def test_allowed_countries_replace_the_home_default(org, key):
    org.allowed_countries = ["CA", "JM"]
    org.save()
    assert create(org, key, to="+18765551234").status == "queued"
    assert create(org, key, to="+14165551234").status == "queued"
    with pytest.raises(CountryNotAllowed):
        create(org, key, to="+12125551234")


def test_test_keys_obey_the_country_list_too(org):
    test_key = ApiKeyFactory(org=org, mode=KeyMode.TEST)
    with pytest.raises(CountryNotAllowed):
        create(org, test_key, to="+442079460958")


# --- order of decisions ------------------------------------------------------------------------------------


def test_country_refusal_comes_before_the_provider_check_and_the_rate_limit(org, key, monkeypatch):
    def rate_limited(**kw):
        raise RateLimited("slow down", retry_after=1)

    monkeypatch.setattr(sends_module, "send_rate_check", rate_limited)
    with pytest.raises(CountryNotAllowed):
        create(org, key, to="+18765551234")
    with pytest.raises(RateLimited):
        create(org, key, to="+15551234567")
    org.provider_accounts.all().delete()
    org.refresh_from_db()
    with pytest.raises(CountryNotAllowed):
        create(org, key, to="+18765551234")
    with pytest.raises(ProviderNotConfigured):
        create(org, key, to="+15551234567")


def test_pumping_is_checked_before_the_transactions_first_statement_and_before_quota_and_spend(org, key, monkeypatch):
    # The send's atomic block may be entered (its rows are built while the Redis reply travels), but none of its
    # statements — the lock, the checks, the writes — has been sent when the pumping window is decided. Outside a
    # test's transaction that means no server-side transaction at all: test_no_transaction_is_open_while_…
    seen = []
    real = cost_module.pumping_check
    sent = []
    monkeypatch.setattr(sends_module, "StatementBatch", _recording_batch(sends_module.StatementBatch, sent))

    def spy(**kw):
        seen.append(any("pg_advisory_xact_lock" in sql or "INSERT INTO" in sql for sql in sent))
        return real(**kw)

    monkeypatch.setattr(cost_module, "pumping_check", spy)
    org.pumping_limit = 3
    org.monthly_quota_override = 0  # every send that gets past pumping is refused by the quota
    org.save()
    errors = []
    for i in range(5):
        sent.clear()  # this send's statements only
        with connection.execute_wrapper(lambda execute, sql, *a: sent.append(sql) or execute(sql, *a)):
            with pytest.raises((QuotaExceededError, SuspectedPumping)) as exc:
                create(org, key, to=f"+1415555{i:04d}", body=f"code {i}")
        errors.append(exc.value.code)
    # the pumping window counted the three quota-refused attempts: the check ran before the quota
    assert errors == ["quota_exceeded"] * 3 + ["suspected_pumping"] * 2
    assert seen == [False] * 5
    entry = rejected(org, "suspected_pumping").first()
    assert entry.details["range"] == "+1415555" and "reason" in entry.details


def _recording_batch(batch_class, sent: list):
    class Recording(batch_class):
        def run(self):
            sent.extend(sql for sql, _ in self.statements)
            return super().run()

    return Recording


@pytest.mark.django_db(transaction=True)
def test_no_transaction_is_open_while_the_rate_and_pumping_reply_is_read(org, monkeypatch):
    # As in production (no test transaction around the send): while decisions 3 and 3b are taken, the
    # connection holds no transaction — no lock, no `idle in transaction` — whatever the atomic block says.
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    from orgs.selectors import api_key_get_by_raw
    from psycopg.pq import TransactionStatus

    org.send_rate_override = 1000
    org.save()
    key = api_key_get_by_raw(ApiKeyFactory(org=org, role=Role.MEMBER, mode=KeyMode.PROD).raw_key)
    seen = []
    real = cost_module.pumping_check

    def spy(**kw):
        seen.append(connection.connection.info.transaction_status)
        return real(**kw)

    monkeypatch.setattr(cost_module, "pumping_check", spy)
    for i in range(2):  # the first creates the period's quota rows; the second is the common send
        assert send_create(org=key.org, api_key=key, to=f"+1415555{i:04d}", body=f"x {i}").send.status == "queued"
    assert seen == [TransactionStatus.IDLE] * 2


def test_a_spend_cap_refusal_stands_where_the_quota_refusal_does(org, key):
    org.monthly_spend_cap = Decimal("0")
    org.save()
    # suppressed recipient and duplicate: stored, 202, price 0, nothing reserved — never a spend refusal
    SuppressionFactory(org=org, phone_number="+15550000001")
    assert create(org, key, to="+15550000001").status == "failed"
    org.monthly_spend_cap = None
    org.save()
    first = create(org, key, to="+15550000002", body="dup")
    org.monthly_spend_cap = first.price  # exactly what is spent: the next costed send is over
    org.save()
    duplicate = create(org, key, to="+15550000002", body="dup")
    assert duplicate.status == "suppressed" and duplicate.price == 0
    with pytest.raises(SpendCapExceeded) as exc:
        create(org, key, to="+15550000003")
    assert exc.value.http_status == 429
    assert exc.value.details["cap"] == pricing.amount_str(first.price)
    assert exc.value.details["resets_at"].endswith("T00:00:00Z")
    assert Send.objects.filter(org=org, to="+15550000003").count() == 0
    assert rejected(org, "spend_cap_exceeded").count() == 1
    assert spend_status(org=org).amount == first.price


def test_rate_limit_answers_before_the_spend_cap(org, key, monkeypatch):
    org.monthly_spend_cap = Decimal("0")
    org.save()

    def rate_limited(**kw):
        raise RateLimited("slow down", retry_after=1)

    monkeypatch.setattr(sends_module, "send_rate_check", rate_limited)
    with pytest.raises(RateLimited):
        create(org, key)


# --- prices ------------------------------------------------------------------------------------------------


def test_estimated_price_is_segments_times_the_unit_price_in_decimal(org, key):
    org.allowed_countries = ["US", "GB"]
    org.save()
    body = "x" * 161  # two GSM-7 segments
    send = create(org, key, to="+442079460958", body=body)
    assert send.segments == 2 and send.price == Decimal("0.1048") and send.price_unit == "USD"
    assert isinstance(send.price, Decimal)
    stored = Send.objects.get(pk=send.pk)
    assert stored.price == Decimal("0.1048")
    assert pricing.amount_str(stored.price) == "0.1048"


def test_a_negotiated_rate_overrides_the_table(org, key):
    org.price_overrides = {"US": "0.00625"}
    org.save()
    assert create(org, key).price == Decimal("0.00625")


def test_test_sends_cost_nothing_and_reserve_nothing(org):
    test_key = ApiKeyFactory(org=org, mode=KeyMode.TEST)
    org.monthly_spend_cap = Decimal("0")
    org.save()
    send = create(org, test_key)
    assert send.status == "queued" and send.price == 0
    assert not SpendUsage.objects.filter(org=org).exists()


def test_price_table_has_a_fallback_and_never_a_float():
    assert pricing.unit_price(provider="twilio", country="US") == Decimal("0.0083")
    assert pricing.unit_price(provider="messagebird", country="ZW") == Decimal("0.1000")
    assert pricing.unit_price(provider="unknown", country="GB") == Decimal("0.0524")
    assert all(isinstance(v, Decimal) for v in pricing.price_table().values())


@pytest.mark.parametrize(("raw", "ok"), [("250.00", True), ("0.0001", True), ("1.23456", False), (1.5, False),
                                          ("-1", False), ("NaN", False), ("abc", False), ("1e400", False)])
def test_amount_parsing(raw, ok):
    if ok:
        assert isinstance(pricing.parse_amount(raw, name="cap"), Decimal)
    else:
        with pytest.raises(ValueError):
            pricing.parse_amount(raw, name="cap")


# --- refunds and provider prices ---------------------------------------------------------------------------


def test_a_permanently_failed_send_is_refunded(org, key):
    org.monthly_spend_cap = Decimal("0.0166")  # two US sends
    org.save()
    first = create(org, key, to="+15550000001")
    create(org, key, to="+15550000002")
    with pytest.raises(SpendCapExceeded):
        create(org, key, to="+15550000003")
    send_fail_unsent(Send.objects.get(pk=first.pk), code="21211", message="invalid number")
    assert Send.objects.get(pk=first.pk).price == 0
    assert spend_status(org=org).amount == Decimal("0.0083")
    assert create(org, key, to="+15550000003").status == "queued"  # the refund made room


def test_a_refund_never_takes_the_meter_below_zero(org, key):
    send = create(org, key)
    assert spend_refund(org_id=org.pk, send_id=send.pk, country="US", amount=Decimal("1"), at=send.created_at) is False
    assert spend_status(org=org).amount == Decimal("0.0083")


def test_the_providers_price_replaces_the_estimate_and_moves_the_meter(org, key):
    send = create(org, key)
    assert cost_module.send_price_report(send_id=send.pk, raw_price="-0.00790", raw_unit="USD") is True
    assert Send.objects.get(pk=send.pk).price == Decimal("0.0079")
    assert spend_status(org=org).amount == Decimal("0.0079")
    assert cost_module.send_price_report(send_id=send.pk, raw_price="-0.5", raw_unit="EUR") is False
    assert cost_module.send_price_report(send_id=send.pk, raw_price=None) is False
    assert Send.objects.get(pk=send.pk).price == Decimal("0.0079")


def test_a_status_callback_with_a_price_replaces_the_estimate(org, key):
    """Each adapter reads its provider's own price fields into the neutral StatusUpdate (Twilio: Price/PriceUnit,
    a negative charge; MessageBird: price[amount]/price[currency]); the status service only reads `price`."""
    from sms.providers.messagebird import MessageBirdProvider
    from sms.providers import webhook_provider_for
    from sms.services.status import send_apply_status

    send = create(org, key)
    Send.objects.filter(pk=send.pk).update(provider_message_id="SM1", status="sending")
    twilio = webhook_provider_for(org.provider_accounts.get(provider="twilio"))
    update = twilio.parse_status({"MessageSid": "SM1", "MessageStatus": "sent", "Price": "-0.0075",
                                                "PriceUnit": "USD"})
    assert (update.price, update.price_unit) == ("-0.0075", "USD")
    send_apply_status(org=org, update=update)
    assert Send.objects.get(pk=send.pk).price == Decimal("0.0075")

    Send.objects.filter(pk=send.pk).update(provider="messagebird")  # a MessageBird report names a MessageBird send
    request = WebhookRequest(url="https://x/status", method="GET", headers={}, body=b"", params={
        "id": "SM1", "reference": str(send.pk), "recipient": send.to[1:], "status": "delivered",
        "price[amount]": "0.0081", "price[currency]": "USD"})
    update = MessageBirdProvider(access_key="k").parse_status_request(request)
    assert (update.price, update.price_unit) == ("0.0081", "USD")
    send_apply_status(org=org, update=update)
    assert Send.objects.get(pk=send.pk).price == Decimal("0.0081")
    eur = WebhookRequest(url="https://x/status", method="GET", headers={}, body=b"", params={
        "id": "SM1", "status": "delivered", "price[amount]": "0.07", "price[currency]": "EUR"})
    send_apply_status(org=org, update=MessageBirdProvider(access_key="k").parse_status_request(eur))
    assert Send.objects.get(pk=send.pk).price == Decimal("0.0081")  # another currency is not converted: kept


# --- caps: thresholds, spend before the cap, stats ---------------------------------------------------------


def test_threshold_events_fire_once_per_period_at_50_80_and_100_percent(org, key):
    org.price_overrides = {"US": "0.01"}
    org.monthly_spend_cap = Decimal("0.05")
    org.save()
    fired = []
    for i in range(5):
        create(org, key, to=f"+1555000{i:04d}")
        fired.append(sorted(e.data["threshold"] for e in Event.objects.filter(org=org, type="sms.spend_threshold")))
    assert fired == [[], [], [50], [50, 80], [50, 80, 100]]
    with pytest.raises(SpendCapExceeded):
        create(org, key, to="+15550009999")
    event = Event.objects.get(org=org, type="sms.spend_threshold", data__threshold=100)
    assert event.data["cap"] == "0.05" and event.data["spent"] == "0.05" and event.data["scope"] == "monthly"
    assert SpendThresholdMark.objects.filter(org=org).count() == 3


def test_a_country_cap_only_counts_that_country(org, key):
    org.allowed_countries = ["US", "CA"]
    org.country_spend_caps = {"CA": "0.0083"}
    org.save()
    create(org, key, to="+14165550001")
    with pytest.raises(SpendCapExceeded) as exc:
        create(org, key, to="+14165550002")
    assert exc.value.details["country"] == "CA" and exc.value.details["scope"] == "country"
    assert create(org, key, to="+12125550003").status == "queued"  # US is not capped


def test_a_cap_set_mid_month_covers_the_spend_before_it(org, key):
    for i in range(3):
        create(org, key, to=f"+1555000{i:04d}")
    org.monthly_spend_cap = Decimal("0.0249")  # three sends (0.0249) already spent
    org.save()
    with pytest.raises(SpendCapExceeded):
        create(org, key, to="+15550000009")


def test_stats_carry_the_cost_by_country(org, key):
    org.allowed_countries = ["US", "CA"]
    org.save()
    create(org, key, to="+12125550001")
    create(org, key, to="+14165550002", body="y" * 200)  # 2 segments
    stats = send_stats(org=org, mode="prod")
    assert stats.cost == {"amount": "0.0249", "currency": "USD", "by_country": {"CA": "0.0166", "US": "0.0083"}}
    assert send_stats(org=org, mode="test").cost == {"amount": "0", "currency": "USD", "by_country": {}}
    last_year = dt.date.today().replace(year=dt.date.today().year - 1)
    assert send_stats(org=org, mode="prod", since_day=last_year, until_day=last_year + dt.timedelta(days=2)
                      ).cost["amount"] == "0"


def test_twilios_reported_price_reaches_the_send_through_the_sweepers_status_fetch(org, key, settings):
    """Over real HTTP to the fake Twilio: the message resource's `price` ("-0.00790" once sent) replaces the
    estimate when the sweeper fetches the status of an accepted send."""
    from sms.providers import OutboundSms, provider_for
    from sms.services.sweeper import _reconcile_one
    from tests.factories import TEST_AUTH_TOKEN
    from tests.fakes.twilio_server import FakeTwilio

    account = org.provider_accounts.get(provider="twilio")
    with FakeTwilio() as fake:
        fake.add_account(account.account_sid, TEST_AUTH_TOKEN, numbers=[account.from_number])
        settings.TWILIO_API_BASE_URL = fake.base_url
        org.price_overrides = {"US": "0.0100"}
        org.save()
        send = create(org, key, to="+14155550123")
        assert send.price == Decimal("0.0100")
        outcome = provider_for(account, "prod").send(OutboundSms(send_id=str(send.pk), to=send.to,
                                                                 from_number=account.from_number, body=send.body))
        Send.objects.filter(pk=send.pk).update(status="sending", provider_message_id=outcome.provider_message_id)
        fake.set_message_status(outcome.provider_message_id, "delivered")
        assert _reconcile_one(Send.objects.select_related("org").get(pk=send.pk)) == "status_refreshed"
    stored = Send.objects.get(pk=send.pk)
    assert (stored.status, stored.price) == ("delivered", Decimal("0.0079"))
    assert spend_status(org=org).amount == Decimal("0.0079")
