"""orgs.quota: one conditional UPDATE per reservation, monthly UTC periods, refunds never below zero."""
import datetime as dt

import pytest
from django.db import transaction

from orgs.errors import QuotaExceededError
from orgs.models import QuotaUsage
from orgs.quota import period_bounds, period_start_for, quota_refund, quota_reserve, quota_status

pytestmark = pytest.mark.django_db

UTC = dt.timezone.utc
AT = dt.datetime(2025, 6, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def org(org):
    org.monthly_quota_override = 3
    org.save(update_fields=["monthly_quota_override"])
    return org


def test_reservation_creates_the_row_on_demand_and_counts_up_to_the_limit(org):
    assert quota_reserve(org=org, at=AT) == dt.date(2025, 6, 1)
    quota_reserve(org=org, at=AT)
    quota_reserve(org=org, at=AT)
    with pytest.raises(QuotaExceededError) as exc:
        quota_reserve(org=org, at=AT)
    assert exc.value.code == "quota_exceeded" and exc.value.http_status == 429
    assert exc.value.details["limit"] == 3
    assert QuotaUsage.objects.get(org=org).used == 3


def test_multi_unit_reservation_never_goes_over(org):
    quota_reserve(org=org, units=2, at=AT)
    with pytest.raises(QuotaExceededError):
        quota_reserve(org=org, units=2, at=AT)
    assert QuotaUsage.objects.get(org=org).used == 2
    with pytest.raises(QuotaExceededError):
        quota_reserve(org=org, units=4, at=AT)


def test_zero_quota_refuses_everything(org):
    org.monthly_quota_override = 0
    with pytest.raises(QuotaExceededError):
        quota_reserve(org=org, at=AT)


def test_periods_are_calendar_months_in_utc(org):
    for _ in range(3):
        quota_reserve(org=org, at=AT)
    # 23:30 on the 30th in UTC-5 is already July 1st in UTC: a fresh period.
    late = dt.datetime(2025, 6, 30, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert quota_reserve(org=org, at=late) == dt.date(2025, 7, 1)
    assert period_start_for(dt.datetime(2025, 12, 31, 23, 59, tzinfo=UTC)) == dt.date(2025, 12, 1)
    assert period_bounds(dt.date(2025, 12, 1)) == (dt.datetime(2025, 12, 1, tzinfo=UTC),
                                                   dt.datetime(2026, 1, 1, tzinfo=UTC))
    assert period_bounds(dt.date(2024, 2, 1))[1] == dt.datetime(2024, 3, 1, tzinfo=UTC)


def test_raising_the_quota_takes_effect_immediately(org):
    for _ in range(3):
        quota_reserve(org=org, at=AT)
    org.monthly_quota_override = 4
    quota_reserve(org=org, at=AT)
    assert QuotaUsage.objects.get(org=org).used == 4


def test_reservation_is_undone_when_the_callers_transaction_rolls_back(org):
    quota_reserve(org=org, at=AT)
    with pytest.raises(RuntimeError), transaction.atomic():
        quota_reserve(org=org, at=AT)
        raise RuntimeError("later step failed")
    assert QuotaUsage.objects.get(org=org).used == 1


def test_refund_gives_units_back_but_never_below_zero(org):
    start = quota_reserve(org=org, at=AT)
    assert quota_refund(org_id=org.id, period_start=start) is True
    assert quota_refund(org_id=org.id, period_start=start) is False
    assert QuotaUsage.objects.get(org=org).used == 0
    assert quota_refund(org_id=org.id, period_start=dt.date(2020, 1, 1)) is False


def test_status_reports_limit_used_remaining_and_period(org):
    quota_reserve(org=org, at=AT)
    status = quota_status(org=org, at=AT)
    assert (status.limit, status.used, status.remaining) == (3, 1, 2)
    assert status.period_start == dt.datetime(2025, 6, 1, tzinfo=UTC)
    assert status.period_end == dt.datetime(2025, 7, 1, tzinfo=UTC)
    empty = quota_status(org=org, at=dt.datetime(2025, 8, 2, tzinfo=UTC))
    assert (empty.used, empty.remaining) == (0, 3)


def test_status_remaining_is_never_negative_after_the_quota_is_lowered(org):
    for _ in range(3):
        quota_reserve(org=org, at=AT)
    org.monthly_quota_override = 1
    assert quota_status(org=org, at=AT).remaining == 0


@pytest.fixture
def sharded(monkeypatch):
    """Small shards so a small quota is split over QUOTA_SHARDS rows."""
    from orgs import quota

    monkeypatch.setattr(quota, "QUOTA_SHARD_MIN", 1)
    return quota


def test_sharded_meter_reaches_the_limit_exactly_and_never_more(org, sharded):
    org.monthly_quota_override = 19
    for _ in range(19):
        quota_reserve(org=org, at=AT)
    with pytest.raises(QuotaExceededError):
        quota_reserve(org=org, at=AT)
    rows = list(QuotaUsage.objects.filter(org=org).values_list("shard", "used"))
    assert len(rows) == sharded.QUOTA_SHARDS
    assert sum(used for _, used in rows) == 19
    assert quota_status(org=org, at=AT).used == 19


def test_sharded_meter_respects_a_limit_lowered_mid_period(org, sharded):
    org.monthly_quota_override = 80
    for _ in range(40):
        quota_reserve(org=org, at=AT)
    org.monthly_quota_override = 45
    for _ in range(5):
        quota_reserve(org=org, at=AT)
    with pytest.raises(QuotaExceededError):
        quota_reserve(org=org, at=AT)
    assert quota_status(org=org, at=AT).used == 45


def test_sharded_refund_gives_back_one_unit(org, sharded):
    org.monthly_quota_override = 16
    start = quota_reserve(org=org, at=AT)
    quota_reserve(org=org, at=AT)
    assert quota_refund(org_id=org.id, period_start=start) is True
    assert quota_status(org=org, at=AT).used == 1


def test_shard_count_grows_with_the_limit():
    from orgs.quota import QUOTA_SHARDS, shards_for

    assert shards_for(0) == shards_for(5_000) == shards_for(19_999) == 1  # free / starter: one row
    assert shards_for(50_000) == 5
    assert shards_for(100_000) == shards_for(1_000_000) == QUOTA_SHARDS  # growth / enterprise
