"""The send pipeline end to end: API → Redis → a real Celery worker process → fake Twilio over HTTP →
signed status callbacks to the live server → delivered → events on the Redis stream."""
import json

import pytest
import redis
from django.conf import settings

from orgs.models import QuotaUsage
from sms.models import DispatchHandoff, Event, Send, SendStatusChange, Suppression
from sms.statuses import SendStatus
from sms.tasks import send_dispatch_task
from tests.factories import TEST_AUTH_TOKEN, ApiKeyFactory, OrgFactory, ProviderAccountFactory, SendFactory
from tests.fakes.twilio_server import Reply
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


@pytest.fixture
def tenant(fake_twilio):
    org = OrgFactory(send_rate_override=1000)
    account = ProviderAccountFactory(org=org)
    fake_twilio.add_account(account.account_sid, TEST_AUTH_TOKEN, numbers=[account.from_number])
    key = ApiKeyFactory(org=org, mode="prod")
    return org, account, key


def post_send(client_for, org, key, to, body="Your code is 482910"):
    response = client_for(key).post(f"/api/v1/orgs/{org.pk}/sms/send", {"to": to, "body": body}, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def current(send_id) -> Send:
    return Send.objects.get(pk=send_id)


def stream_event_ids() -> set[str]:
    client = redis.Redis.from_url(settings.SMS_EVENTS_REDIS_URL)
    return {json.loads(fields[b"event"])["id"] for _, fields in client.xrange(settings.SMS_EVENTS_STREAM)}


def task_finished(worker, task_id: str) -> bool:
    return any(task_id in line and "succeeded" in line for line in worker.output().splitlines())


def test_send_goes_through_the_worker_to_twilio_and_callbacks_take_it_to_delivered(
        celery_worker, fake_twilio, tenant, client_for, live_server):
    org, account, key = tenant
    send_id = post_send(client_for, org, key, "+14155550101")
    send = wait_for(lambda: (s := current(send_id)).provider_message_id and s, message="provider acceptance")
    assert send.status == SendStatus.SENDING
    # Handed to the worker by its dispatcher (sms/services/handoff.py): the hand-off row is gone; one create below.
    assert not DispatchHandoff.objects.filter(send_id=send_id).exists()
    (request,) = fake_twilio.requests_to("/Messages.json", "POST")
    assert request.form["StatusCallback"] == f"{live_server.url}/api/v1/sms/webhooks/twilio/{org.pk}/status?send_id={send_id}"

    results = fake_twilio.deliver_status_callbacks(send.provider_message_id, ["sent", "delivered"])
    assert all(r.http_status is not None and 200 <= r.http_status < 300 for r in results), results
    send = current(send_id)
    assert send.status == SendStatus.DELIVERED and send.sent_at and send.delivered_at
    assert [c.status for c in SendStatusChange.objects.filter(send=send)] == ["queued", "sending", "sent", "delivered"]
    events = {e.type: e for e in Event.objects.filter(send=send)}
    assert set(events) == {"sms.sent", "sms.delivered"}
    # Published to the bus by the worker's events task after commit.
    wait_for(lambda: {str(e.pk) for e in events.values()} <= stream_event_ids(), message="events on the stream")
    wait_for(lambda: not Event.objects.filter(send=send, published_at__isnull=True).exists(),
             message="published_at stamped")


def test_a_503_is_retried_by_the_worker_and_sent_once(celery_worker, fake_twilio, tenant, client_for):
    org, _, key = tenant
    fake_twilio.script(Reply(status=503))
    send_id = post_send(client_for, org, key, "+14155550102")
    send = wait_for(lambda: (s := current(send_id)).provider_message_id and s, message="acceptance after a retry")
    assert send.attempts == 2 and send.review_reason == ""
    assert fake_twilio.create_attempts() == 2 and fake_twilio.count_creates() == 1
    # Never back to queued: the retry is a timeline entry while the send stays `sending`.
    assert [(c.status, c.detail) for c in SendStatusChange.objects.filter(send=send)][1:] == [
        ("sending", {"attempt": 1, "provider": "twilio"}), ("sending", {"retry": True, "attempt": 1, "error_code": "20503"}),
        ("sending", {"attempt": 2, "provider": "twilio"})]


def test_duplicate_retry_tasks_racing_the_scheduled_retry_call_twilio_once(celery_worker, fake_twilio, tenant):
    org, account, _ = tenant
    # Retry-After holds the scheduled retry back for 4 s, so the retry mark is observable: without it the
    # jittered backoff can be ~0 s and the retry can succeed before the test ever sees the mark.
    fake_twilio.script(Reply(status=503, headers={"Retry-After": "4"}))
    send = SendFactory(org=org, status=SendStatus.QUEUED, mode="prod", provider="twilio", to="+14155550107",
                       from_number=account.from_number)
    send_dispatch_task.delay(str(send.pk))
    wait_for(lambda: current(send.pk).review_reason.startswith("retrying:"), message="the retry mark")
    extra = [send_dispatch_task.delay(str(send.pk), 1).id for _ in range(4)]  # e.g. redelivered / swept copies
    wait_for(lambda: all(task_finished(celery_worker, t) for t in extra), message="the duplicate retries")
    send = wait_for(lambda: (s := current(send.pk)).provider_message_id and s, message="acceptance")
    assert send.attempts == 2 and send.status == SendStatus.SENDING
    assert fake_twilio.create_attempts(to="+14155550107") == 2 and fake_twilio.count_creates(to="+14155550107") == 1


def test_21610_fails_the_send_suppresses_the_recipient_and_refunds_the_quota(
        celery_worker, fake_twilio, tenant, client_for):
    org, _, key = tenant
    send_id = post_send(client_for, org, key, "+15005550004")
    send = wait_for(lambda: (s := current(send_id)).status == SendStatus.FAILED and s, message="failed")
    assert send.error_code == "21610"
    assert Suppression.objects.get(org=org, phone_number="+15005550004").reason == "carrier_opt_out"
    assert QuotaUsage.objects.get(org=org).used == 0
    assert list(Event.objects.filter(send=send).values_list("type", flat=True)) == ["sms.failed"]
    # The next send to that number is stopped at acceptance and never reaches Twilio.
    post_send(client_for, org, key, "+15005550004", body="another message")
    assert fake_twilio.create_attempts(to="+15005550004") == 1


def test_redelivered_and_duplicate_tasks_never_call_twilio_twice(celery_worker, fake_twilio, tenant):
    org, account, _ = tenant
    send = SendFactory(org=org, status=SendStatus.QUEUED, mode="prod", provider="twilio", to="+14155550104",
                       from_number=account.from_number)
    task_ids = [send_dispatch_task.delay(str(send.pk)).id for _ in range(5)]
    wait_for(lambda: all(task_finished(celery_worker, t) for t in task_ids), message="all five tasks")
    send.refresh_from_db()
    assert send.provider_message_id and send.attempts == 1
    assert fake_twilio.create_attempts(to="+14155550104") == 1
    again = send_dispatch_task.delay(str(send.pk)).id  # a late redelivery of the original message
    wait_for(lambda: task_finished(celery_worker, again), message="the redelivered task")
    assert fake_twilio.create_attempts(to="+14155550104") == 1


def test_test_mode_send_is_delivered_by_the_sandbox_without_touching_twilio(
        celery_worker, fake_twilio, client_for, tenant):
    org, _, _ = tenant
    test_key = ApiKeyFactory(org=org, mode="test")
    send_id = post_send(client_for, org, test_key, "+14155550105")
    send = wait_for(lambda: (s := current(send_id)).status == SendStatus.DELIVERED and s, message="delivered")
    assert send.provider == "sandbox" and send.provider_message_id.startswith("SM")
    assert fake_twilio.create_attempts() == 0
    assert sorted(Event.objects.filter(send=send).values_list("type", flat=True)) == ["sms.delivered", "sms.sent"]


def test_unknown_status_callback_is_acknowledged_without_changes(celery_worker, fake_twilio, tenant, client_for):
    org, _, key = tenant
    send_id = post_send(client_for, org, key, "+14155550106")
    send = wait_for(lambda: (s := current(send_id)).provider_message_id and s, message="acceptance")
    fake_twilio.deliver_status_callbacks(send.provider_message_id, ["delivered"])
    late = fake_twilio.deliver_status_callbacks(send.provider_message_id, ["sent"])
    assert late[0].http_status < 300
    send = current(send_id)
    assert send.status == SendStatus.DELIVERED
    assert SendStatusChange.objects.filter(send=send, status="sent").count() == 0
    assert Event.objects.filter(send=send, type="sms.sent").count() == 1

