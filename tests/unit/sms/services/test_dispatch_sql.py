"""Dispatch's one-statement hot path on PostgreSQL (sms/services/dispatch_sql.py) leaves exactly the rows the ORM
path of sms/services/dispatch.py leaves: the claimed send, its `sending` timeline row and the counter move; it
claims nothing that path would refuse (a suppressed recipient, a send no longer queued)."""
import pytest
from django.utils import timezone

from sms.models import Send, SendDailyCount, SendStatusChange
from sms.services import dispatch as dispatch_module
from sms.services import dispatch_sql
from sms.services.counters import send_counts_add
from sms.statuses import DispatchState, SendStatus
from tests.factories import OrgFactory, ProviderAccountFactory, SendFactory, SuppressionFactory

pytestmark = pytest.mark.django_db

COMPARED = ("status", "attempts", "provider", "from_number", "dispatch_state", "review_reason", "sending_started_at")


def _queued(org, **kwargs):
    send = SendFactory(org=org, status=SendStatus.QUEUED, dispatch_state=DispatchState.PENDING, **kwargs)
    send_counts_add(send=send)
    return send


def _claim(send_id, route, *, fast: bool, monkeypatch, now):
    monkeypatch.setattr(dispatch_sql, "enabled", lambda: fast)
    monkeypatch.setattr(dispatch_module.timezone, "now", lambda: now)
    return dispatch_module._claim(send_id, None, route=route)


def _rows(send):
    send.refresh_from_db()
    timeline = list(SendStatusChange.objects.filter(send=send).values_list("status", "source", "detail"))
    counts = sorted((s, c, g) for s, c, g in SendDailyCount.objects.filter(org_id=send.org_id)
                    .values_list("status", "count", "segments") if c or g)
    return {f: getattr(send, f) for f in COMPARED}, timeline, counts


@pytest.mark.parametrize("mode, provider, from_number", [
    ("prod", "twilio", "+15005550006"),   # routed to its own provider: keeps its sender
    ("prod", "messagebird", "+15005550006"),  # routed elsewhere: provider and sender follow the route
    ("prod", "twilio", ""),               # no sender yet: the route's
    ("test", "twilio", "+15005550006"),   # test sends stay with the sandbox's provider and sender
])
def test_the_one_statement_claim_leaves_the_rows_the_orm_claim_leaves(monkeypatch, mode, provider, from_number):
    now = timezone.now()
    results = []
    for fast in (True, False):
        org = OrgFactory()
        route = ProviderAccountFactory(org=org, from_number="+15005550099")
        send = _queued(org, mode=mode, provider=provider, from_number=from_number, segments=2)
        claimed = _claim(send.pk, route, fast=fast, monkeypatch=monkeypatch, now=now)
        assert claimed is not None and claimed.pk == send.pk
        assert {f: getattr(claimed, f) for f in COMPARED} == _rows(send)[0]  # what the caller gets is what is stored
        assert (claimed.metadata, claimed.created_at, claimed.body) == (send.metadata, send.created_at, send.body)
        results.append(_rows(send))
    assert results[0] == results[1]
    fields, timeline, counts = results[0]
    assert fields["status"] == SendStatus.SENDING and fields["attempts"] == 1
    assert timeline == [(SendStatus.SENDING, "worker", {"attempt": 1, "provider": fields["provider"]})]
    assert counts == [(SendStatus.SENDING, 1, 2)]  # queued went back to 0


def test_a_suppressed_recipient_or_a_send_no_longer_queued_is_not_claimed(monkeypatch):
    org = OrgFactory()
    route = ProviderAccountFactory(org=org)
    suppressed = _queued(org, mode="prod")
    SuppressionFactory(org=org, phone_number=suppressed.to)
    taken = _queued(org, mode="prod")
    Send.objects.filter(pk=taken.pk).update(status=SendStatus.SENDING, attempts=1)
    for send in (suppressed, taken):
        before = _rows(send)
        assert dispatch_sql.claim_queued(send.pk, now=timezone.now(), route=route) is None
        assert _rows(send) == before


def test_another_orgs_suppression_of_the_number_does_not_block_the_claim():
    org, other = OrgFactory(), OrgFactory()
    route = ProviderAccountFactory(org=org)
    send = _queued(org, mode="prod")
    SuppressionFactory(org=other, phone_number=send.to)
    assert dispatch_sql.claim_queued(send.pk, now=timezone.now(), route=route) is not None


def test_accounts_for_send_are_its_orgs_enabled_accounts_only():
    org, other = OrgFactory(), OrgFactory()
    mine = ProviderAccountFactory(org=org, provider="twilio")
    ProviderAccountFactory(org=org, provider="sinch", enabled=False)
    ProviderAccountFactory(org=other, provider="twilio")
    send = _queued(org, mode="prod")
    (found,) = dispatch_sql.accounts_for_send(send.pk)
    assert (found.pk, found.org_id, found.account_sid, found.auth_token()) == (mine.pk, org.pk, mine.account_sid,
                                                                             mine.auth_token())


def test_mark_accepted_stores_the_provider_id_only_on_a_send_still_sending():
    org = OrgFactory()
    sending = _queued(org, mode="prod")
    Send.objects.filter(pk=sending.pk).update(status=SendStatus.SENDING, dispatch_state=DispatchState.IN_FLIGHT,
                                              review_reason="x")
    delivered = _queued(org, mode="prod")
    Send.objects.filter(pk=delivered.pk).update(status=SendStatus.DELIVERED)
    assert dispatch_sql.mark_accepted(sending.pk, provider_message_id="SM1", now=timezone.now()) == 1
    assert dispatch_sql.mark_accepted(delivered.pk, provider_message_id="SM2", now=timezone.now()) == 0
    sending.refresh_from_db()
    delivered.refresh_from_db()
    assert (sending.provider_message_id, sending.dispatch_state, sending.review_reason) == (
        "SM1", DispatchState.AWAITING_PROVIDER, "")
    assert delivered.provider_message_id == ""
