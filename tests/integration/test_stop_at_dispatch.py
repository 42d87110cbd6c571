"""Issue #10.1 — STOP is final at dispatch too, with a REAL Celery worker on Redis and the fake Twilio,
on each path (tests/integration/test_stop_is_final_worker.py covers the operator re-send after a signed
inbound STOP; tests/unit/sms/services/test_dispatch_stop_is_final.py the service without a worker).

Every path that can reach the provider goes through dispatch's claim, which checks the suppression
list in the same UPDATE: the first attempt, the retry of an attempt (after a real 503 + Retry-After),
the sweeper's re-enqueue of a stranded send, and an operator's re-send from the review queue. A
send whose recipient opted out after acceptance ends `failed` with metadata.suppressed=true and
error_code "suppressed" (as at acceptance), its quota unit is refunded, sms.failed fires once, and
the fake Twilio receives no message for it.
"""
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.services import Actor
from orgs.models import QuotaUsage
from orgs.quota import period_start_for
from sms.models import Event, EventType, Send, SendStatusChange, SuppressionReason
from sms.services.counters import send_counts_add
from sms.services.review import send_resolve_parked
from sms.services.suppressions import suppression_ensure
from sms.services.sweeper import sends_requeue_stranded
from sms.statuses import SendStatus
from sms.tasks import send_dispatch_task
from tests.factories import TEST_AUTH_TOKEN, ApiKeyFactory, OrgFactory, ProviderAccountFactory, SendFactory
from tests.fakes.twilio_server import Reply
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]
TO = "+14155550161"


@pytest.fixture
def tenant(fake_twilio):
    org = OrgFactory(send_rate_override=1000)
    account = ProviderAccountFactory(org=org)
    fake_twilio.add_account(account.account_sid, TEST_AUTH_TOKEN, numbers=[account.from_number])
    key = ApiKeyFactory(org=org, mode="prod")
    return org, account, key


def stop(org, phone=TO):
    suppression_ensure(org=org, phone_number=phone, reason=SuppressionReason.STOP_KEYWORD, source="webhook",
                       actor=Actor.system("tests"))


def accepted(org, **fields) -> Send:
    """A send as the API leaves it: queued (or further, via fields), counted, its quota unit reserved."""
    send = SendFactory(org=org, mode="prod", provider="twilio", to=TO, body="Your code is 482910", **fields)
    send_counts_add(send=send)
    usage, _ = QuotaUsage.objects.get_or_create(org=org, period_start=period_start_for(send.created_at))
    QuotaUsage.objects.filter(pk=usage.pk).update(used=usage.used + 1)
    return send


def quota_used(org) -> int:
    return QuotaUsage.objects.get(org=org, period_start=period_start_for()).used


def assert_failed_as_suppressed(send_id, org, fake_twilio, *, creates_before=0):
    send = wait_for(lambda: (s := Send.objects.get(pk=send_id)).status == SendStatus.FAILED and s,
                    message="the send failed at dispatch")
    assert send.metadata.get("suppressed") is True
    assert send.error_code == "suppressed" and send.provider_message_id == ""
    assert fake_twilio.count_creates(TO) == creates_before  # nothing more went out to the opted-out number
    assert quota_used(org) == 0  # refunded
    assert list(Event.objects.filter(send=send).values_list("type", flat=True)) == [EventType.FAILED]
    last = SendStatusChange.objects.filter(send=send).last()
    assert (last.status, last.detail.get("decision")) == (SendStatus.FAILED, "recipient_suppressed_at_dispatch")
    return send


def test_first_attempt_after_a_stop_is_not_sent(celery_worker, fake_twilio, tenant):
    org, _, _ = tenant
    send = accepted(org)
    stop(org)  # the STOP lands while the dispatch task is still in the queue
    send_dispatch_task.delay(str(send.pk))
    assert_failed_as_suppressed(send.pk, org, fake_twilio)
    assert fake_twilio.create_attempts(TO) == 0


def test_retry_in_backoff_after_a_stop_is_not_sent(celery_worker, fake_twilio, tenant, client_for):
    org, _, key = tenant
    fake_twilio.script(Reply(status=503, headers={"Retry-After": "1"}))
    response = client_for(key).post(f"/api/v1/orgs/{org.pk}/sms/send", {"to": TO, "body": "Your code is 1"},
                                    format="json")
    assert response.status_code == 202, response.content
    send_id = response.json()["id"]
    wait_for(lambda: Send.objects.get(pk=send_id).review_reason.startswith("retrying: attempt 1"),
             message="the 503 marked the send retrying")
    stop(org)  # during the (1 s) backoff
    send = assert_failed_as_suppressed(send_id, org, fake_twilio)
    assert fake_twilio.create_attempts(TO) == 1  # the 503'd attempt only
    assert send.attempts == 1


def test_sweeper_requeue_after_a_stop_is_not_sent(celery_worker, fake_twilio, tenant, settings):
    org, _, _ = tenant
    send = accepted(org)
    Send.objects.filter(pk=send.pk).update(updated_at=timezone.now() - timedelta(hours=1))  # its task was lost
    stop(org)
    assert sends_requeue_stranded() == 1  # the sweeper enqueues it for the real worker
    assert_failed_as_suppressed(send.pk, org, fake_twilio)
    assert fake_twilio.create_attempts(TO) == 0


def test_operator_resend_from_the_review_queue_after_a_stop_is_not_sent(celery_worker, fake_twilio, tenant):
    org, _, _ = tenant
    send = accepted(org, status=SendStatus.SENDING, attempts=1, sending_started_at=timezone.now(),
                    review_reason="parked: lost answer")
    stop(org)
    resolved = send_resolve_parked(send=send, resolution="resend", actor=Actor.system("tests"))
    assert resolved.review_reason.startswith("retrying: attempt 1")  # the re-send was handed to the worker
    assert_failed_as_suppressed(send.pk, org, fake_twilio)
    assert fake_twilio.create_attempts(TO) == 0


def test_the_stop_confirmation_reply_still_goes_out_and_other_numbers_are_sent(celery_worker, fake_twilio, tenant):
    """The claim refuses only the suppressed recipient; the opt-out confirmation is the webhook's TwiML
    reply (no Send, no dispatch), covered in tests/api/test_twilio_webhooks.py."""
    org, _, _ = tenant
    stop(org)
    other = SendFactory(org=org, mode="prod", provider="twilio", to="+14155550162", body="hello")
    send_dispatch_task.delay(str(other.pk))
    wait_for(lambda: Send.objects.get(pk=other.pk).provider_message_id, message="the other number was sent")
    assert fake_twilio.count_creates("+14155550162") == 1
