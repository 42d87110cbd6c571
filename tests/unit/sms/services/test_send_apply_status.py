"""send_apply_status: provider reports applied by the monotonic rule, with timeline, counters and events."""
import threading
import uuid

import pytest
from django.db import connection

from sms.models import Event, SendDailyCount, SendStatusChange, Suppression
from sms.providers import StatusUpdate
from sms.providers.base import UNKNOWN
from sms.services.counters import send_counts_add
from sms.services.status import send_apply_status
from sms.statuses import SendStatus
from tests.factories import OrgFactory, SendFactory


def sending_send(**kw):
    kw.setdefault("provider_message_id", "SM" + uuid.uuid4().hex)
    send = SendFactory(status=SendStatus.SENDING, provider="twilio", mode="prod", **kw)
    send_counts_add(send=send)
    return send


def report(send, status, **kw):
    return StatusUpdate(provider_message_id=send.provider_message_id, status=status,
                        raw={"MessageStatus": status}, **kw)


def event_types(send):
    return sorted(Event.objects.filter(send=send).values_list("type", flat=True))


def counts(org):
    return {r.status: r.count for r in SendDailyCount.objects.filter(org=org) if r.count}


def test_sent_report_moves_sending_to_sent_with_timestamp_timeline_event_and_counters(db):
    send = sending_send()
    result = send_apply_status(org=send.org, update=report(send, SendStatus.SENT))
    assert result.pk == send.pk and result.status == SendStatus.SENT
    assert result.sent_at is not None and result.delivered_at is None
    change = SendStatusChange.objects.get(send=send)
    assert (change.status, change.source, change.detail["provider_status"]) == ("sent", "callback", "sent")
    assert event_types(send) == ["sms.sent"]
    assert counts(send.org) == {"sent": 1}


def test_delivered_after_sent_records_delivered_at_and_sms_delivered_once(db):
    send = sending_send()
    send_apply_status(org=send.org, update=report(send, SendStatus.SENT))
    result = send_apply_status(org=send.org, update=report(send, SendStatus.DELIVERED))
    assert result.status == SendStatus.DELIVERED and result.delivered_at is not None
    assert event_types(send) == ["sms.delivered", "sms.sent"]
    assert counts(send.org) == {"delivered": 1}


def test_late_sent_after_delivered_changes_nothing(db):
    send = sending_send()
    send_apply_status(org=send.org, update=report(send, SendStatus.DELIVERED))
    before = SendStatusChange.objects.count(), Event.objects.count()
    result = send_apply_status(org=send.org, update=report(send, SendStatus.SENT))
    assert result.status == SendStatus.DELIVERED
    assert (SendStatusChange.objects.count(), Event.objects.count()) == before
    assert counts(send.org) == {"delivered": 1}


def test_delivered_that_skipped_sent_also_emits_sms_sent_and_fills_sent_at(db):
    send = sending_send()
    result = send_apply_status(org=send.org, update=report(send, SendStatus.DELIVERED))
    assert result.sent_at is not None
    assert event_types(send) == ["sms.delivered", "sms.sent"]


def test_undelivered_is_sms_failed_with_the_error_code(db):
    send = sending_send()
    send_apply_status(org=send.org, update=report(send, SendStatus.SENT))
    result = send_apply_status(org=send.org, update=report(send, SendStatus.UNDELIVERED, error_code="30003"))
    assert result.status == SendStatus.UNDELIVERED
    assert result.error_code == "30003" and result.failed_at is not None
    assert event_types(send) == ["sms.failed", "sms.sent"]


def test_failed_is_sms_failed_and_never_sms_sent(db):
    send = sending_send()
    result = send_apply_status(org=send.org, update=report(send, SendStatus.FAILED, error_code="30008"))
    assert result.status == SendStatus.FAILED and result.error_code == "30008"
    assert result.sent_at is None
    assert event_types(send) == ["sms.failed"]


def test_nothing_moves_a_send_out_of_a_terminal_status(db):
    send = sending_send()
    send_apply_status(org=send.org, update=report(send, SendStatus.FAILED))
    for status in (SendStatus.SENT, SendStatus.DELIVERED, SendStatus.UNDELIVERED):
        assert send_apply_status(org=send.org, update=report(send, status)).status == SendStatus.FAILED
    assert event_types(send) == ["sms.failed"]


def test_a_duplicated_report_is_applied_once(db):
    send = sending_send()
    send_apply_status(org=send.org, update=report(send, SendStatus.SENT))
    send_apply_status(org=send.org, update=report(send, SendStatus.SENT))
    assert SendStatusChange.objects.filter(send=send).count() == 1
    assert event_types(send) == ["sms.sent"]


def test_unknown_provider_message_id_returns_none_and_writes_nothing(db):
    org = OrgFactory()
    update = StatusUpdate(provider_message_id="SM" + "0" * 32, status=SendStatus.DELIVERED)
    assert send_apply_status(org=org, update=update) is None
    assert SendStatusChange.objects.count() == 0 and Event.objects.count() == 0


def test_another_orgs_message_id_is_unknown(db):
    send = sending_send()
    assert send_apply_status(org=OrgFactory(), update=report(send, SendStatus.DELIVERED)) is None
    send.refresh_from_db()
    assert send.status == SendStatus.SENDING


def test_empty_message_id_returns_none(db):
    assert send_apply_status(org=OrgFactory(), update=StatusUpdate(provider_message_id="", status="sent")) is None


def test_unmapped_provider_status_returns_the_send_unchanged(db):
    send = sending_send()
    result = send_apply_status(org=send.org, update=report(send, UNKNOWN))
    assert result.status == SendStatus.SENDING
    assert SendStatusChange.objects.count() == 0


def test_a_report_that_the_recipient_opted_out_suppresses_them(db):
    send = sending_send(to="+14155550777")
    send_apply_status(org=send.org, update=report(send, SendStatus.FAILED, error_code="21610",
                                                  recipient_opted_out=True))
    suppression = Suppression.objects.get(org=send.org, phone_number="+14155550777")
    assert suppression.reason == "carrier_opt_out"
    assert suppression.source_message_sid == send.provider_message_id


def test_the_status_path_is_a_handful_of_queries(db, django_assert_max_num_queries):
    send = sending_send()
    with django_assert_max_num_queries(12):
        send_apply_status(org=send.org, update=report(send, SendStatus.DELIVERED))


@pytest.mark.django_db(transaction=True)
def test_concurrent_out_of_order_reports_end_in_the_highest_status_with_consistent_counters():
    send = sending_send()
    barrier = threading.Barrier(4)

    def apply(status):
        try:
            barrier.wait()
            send_apply_status(org=send.org, update=report(send, status))
        finally:
            connection.close()

    threads = [threading.Thread(target=apply, args=(s,)) for s in ("delivered", "sent", "sent", "delivered")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    send.refresh_from_db()
    assert send.status == SendStatus.DELIVERED
    assert counts(send.org) == {"delivered": 1}
    assert event_types(send) == ["sms.delivered", "sms.sent"]
    assert SendStatusChange.objects.filter(send=send, status="delivered").count() == 1


def test_a_callback_for_a_parked_send_clears_its_review_reason(db):
    from sms.providers.base import StatusUpdate
    from sms.services.status import send_apply_status
    from sms.statuses import SendStatus
    from tests.factories import SendFactory

    send = SendFactory(status=SendStatus.SENDING, provider="twilio", provider_message_id="SM" + "c" * 32,
                       review_reason="parked: accepted but no final status")
    send_apply_status(org=send.org, update=StatusUpdate(provider_message_id=send.provider_message_id,
                                                        status=SendStatus.DELIVERED))
    send.refresh_from_db()
    assert (send.status, send.review_reason) == (SendStatus.DELIVERED, "")
