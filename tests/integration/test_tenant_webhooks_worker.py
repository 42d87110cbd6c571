"""Issue #15 end to end with a real Celery worker: a live send → fake Twilio → signed status callbacks →
`sms.sent` and `sms.delivered` delivered to the tenant's endpoint, signed (verified by the standardwebhooks
library in the receiver), once each; nothing for an endpoint not subscribed to them; an endpoint that fails
3 times then succeeds gets the same webhook-id each time; the send path is never delayed by a dead endpoint."""
import pytest

from sms.tenant_webhooks import services
from sms.tenant_webhooks.models import WebhookAttempt
from tests.factories import TEST_AUTH_TOKEN, ApiKeyFactory, OrgFactory, ProviderAccountFactory
from tests.fakes.webhook_receiver import Receiver
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def tenant(fake_twilio, settings):
    settings.WEBHOOKS_ALLOW_HTTP = True
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    org = OrgFactory(send_rate_override=1000)
    account = ProviderAccountFactory(org=org)
    fake_twilio.add_account(account.account_sid, TEST_AUTH_TOKEN, numbers=[account.from_number])
    return org, ApiKeyFactory(org=org, mode="prod")


def _subscribe(org, receiver, path, events=None):
    created = services.webhook_endpoint_create(org=org, mode="prod", url=receiver.base_url + path, events=events)
    receiver.secrets[path] = [created.secret]
    return created.endpoint


def test_a_sends_events_arrive_signed_once_each_at_subscribed_endpoints(
        celery_worker, fake_twilio, tenant, client_for, receiver):
    org, key = tenant
    _subscribe(org, receiver, "/both", ["sms.sent", "sms.delivered"])
    _subscribe(org, receiver, "/failed-only", ["sms.failed"])
    flaky = _subscribe(org, receiver, "/flaky", ["*"])
    receiver.script["/flaky"] = [500, 502, 503, 500, 500, 500]  # the first 3 of sms.sent's tries + more

    response = client_for(key).post(f"/api/v1/orgs/{org.pk}/sms/send", {"to": "+14155550111", "body": "hi"},
                                    format="json")
    assert response.status_code == 202
    send_id = response.json()["id"]
    from sms.models import Send

    send = wait_for(lambda: (s := Send.objects.get(pk=send_id)).provider_message_id and s, message="provider id")
    fake_twilio.deliver_status_callbacks(send.provider_message_id, ["sent", "delivered"])

    wait_for(lambda: len(receiver.at("/both")) >= 2, timeout=20, message="both events at /both")
    both = receiver.at("/both")
    assert all(d.verified for d in both)
    assert sorted(d.payload["type"] for d in both) == ["sms.delivered", "sms.sent"]
    assert {d.payload["data"]["id"] for d in both} == {send_id}
    wait_for(lambda: {d.payload["type"] for d in receiver.at("/flaky") if d.payload} >= {"sms.sent", "sms.delivered"}
             and WebhookAttempt.objects.filter(endpoint=flaky, status_code=200).count() == 2,
             timeout=30, message="the flaky endpoint to succeed for both events")
    by_id: dict = {}
    for d in receiver.at("/flaky"):
        assert d.verified
        by_id.setdefault(d.headers["webhook-id"], []).append(d.payload["type"])
    assert len(by_id) == 2  # one webhook-id per event, kept across retries
    assert sum(len(v) for v in by_id.values()) >= 5  # retried
    assert receiver.at("/failed-only") == []
    # Once each: nothing more arrives.
    import time

    time.sleep(1.0)
    assert len(receiver.at("/both")) == 2


def test_a_slow_endpoint_delays_neither_another_tenants_deliveries_nor_sends(
        celery_worker, fake_twilio, tenant, client_for, receiver):
    """Tenant A's endpoint takes 4 s per delivery and has 6 waiting: it holds at most
    WEBHOOKS_ENDPOINT_CONCURRENCY (2 here) of the worker's 4 processes; its other messages wait their turn
    without holding one. Tenant B's test event and B's send go through meanwhile, well inside A's 4 s."""
    import time

    slow = Receiver(delay=4.0).start()
    try:
        slow_org = OrgFactory()
        slow_created = services.webhook_endpoint_create(org=slow_org, mode="prod", url=slow.base_url + "/slow")
        slow.secrets["/slow"] = [slow_created.secret]
        for _ in range(6):
            services.webhook_test_send(endpoint=slow_created.endpoint)
        wait_for(lambda: len(slow.deliveries) >= 2, timeout=10, message="the slow endpoint to be busy")
        started = time.monotonic()
        org, key = tenant
        fast = _subscribe(org, receiver, "/fast")
        services.webhook_test_send(endpoint=fast)
        response = client_for(key).post(f"/api/v1/orgs/{org.pk}/sms/send", {"to": "+14155550112", "body": "hi"},
                                        format="json")
        assert response.status_code == 202
        wait_for(lambda: receiver.at("/fast"), timeout=3, message="tenant B's test event")
        wait_for(lambda: fake_twilio.count_creates(to="+14155550112") == 1, timeout=3, message="tenant B's send")
        assert time.monotonic() - started < 3.5  # both before A's first delivery has even answered
        assert len(slow.deliveries) <= 2  # A never had more than its 2 slots
    finally:
        slow.stop()
