"""Issue #10 point 1 with a real worker: a send parked for an operator, whose recipient then texts STOP (a
signed inbound webhook), is re-sent by the operator — the worker's claim sees the suppression: the send fails
with metadata.suppressed, nothing reaches Twilio, sms.failed fires once and the quota unit comes back."""
import pytest

from audit.services import Actor
from orgs.models import QuotaUsage
from sms.models import Event, Send
from sms.services.dispatch import REVIEW_PARKED
from sms.services.review import send_resolve_parked
from sms.statuses import SendStatus
from tests.api.test_twilio_webhooks import inbound_params, inbound_path, post
from tests.factories import TEST_AUTH_TOKEN, ApiKeyFactory, OrgFactory, ProviderAccountFactory
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


def test_operator_resend_after_stop_is_refused_by_the_workers_claim(celery_worker, fake_twilio, client_for):
    org = OrgFactory(send_rate_override=1000)
    account = ProviderAccountFactory(org=org)
    fake_twilio.add_account(account.account_sid, TEST_AUTH_TOKEN, numbers=[account.from_number])
    key = ApiKeyFactory(org=org, mode="prod")
    # Accept a send, and park it as if its provider answer had been lost (the worker has not sent it yet).
    fake_twilio.auto_callbacks = ()
    response = client_for(key).post(f"/api/v1/orgs/{org.pk}/sms/send", {"to": "+14155550177", "body": "code 1"},
                                    format="json")
    send_id = response.json()["id"]
    wait_for(lambda: Send.objects.get(pk=send_id).provider_message_id, message="the first attempt")
    creates_before = fake_twilio.count_creates()
    Send.objects.filter(pk=send_id).update(status=SendStatus.SENDING, provider_message_id="",
                                           review_reason=f"{REVIEW_PARKED}test", dispatch_state="parked")
    Event.objects.filter(send_id=send_id).delete()
    used = QuotaUsage.objects.get(org=org).used

    from django.test import Client

    from django.conf import settings

    stop = post(inbound_path(org.pk), inbound_params(account, "STOP", from_="+14155550177"), client=Client(),
                signed_url=settings.SMS_PUBLIC_BASE_URL + inbound_path(org.pk))
    assert stop.status_code == 200
    send_resolve_parked(send=Send.objects.get(pk=send_id), resolution="resend", actor=Actor.system("operator"))

    send = wait_for(lambda: (s := Send.objects.get(pk=send_id)).status == SendStatus.FAILED and s,
                    message="the worker's claim to refuse the send")
    assert send.metadata["suppressed"] is True and send.error_code == "suppressed"
    assert fake_twilio.count_creates() == creates_before
    assert list(Event.objects.filter(send_id=send_id).values_list("type", flat=True)) == ["sms.failed"]
    assert QuotaUsage.objects.get(org=org).used == used - 1
