"""MessageBird and Sinch end to end with the real Celery worker: API → worker → fake provider over HTTP
→ signed delivery reports to the live server → delivered → events; inbound STOP / START / HELP / a
plain reply, with the replies sent back through the provider API by the worker, once each; a bad
signature stores nothing; failover from a provider answering 503 to the next one and back after the
cool-down; an ambiguous timeout reconciled with its provider, never re-sent through another."""
import time

import pytest

from sms.models import Event, EventType, InboundMessage, Send, Suppression
from sms.services.failover import provider_health
from sms.statuses import SendStatus
from tests.factories import ApiKeyFactory, OrgFactory
from tests.fakes.fixtures import MB_ORIGINATOR, SINCH_FROM, messagebird_account, sinch_account
from tests.fakes.provider_base import Reply
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

PHONE = "+15557650001"
STATUSES = {"messagebird": ["sent", "delivered"], "sinch": ["Dispatched", "Delivered"]}


@pytest.fixture(params=["messagebird", "sinch"])
def tenant(request, celery_worker):
    name = request.param
    fake = request.getfixturevalue(f"fake_{name}")
    org = OrgFactory(send_rate_override=1000)
    account = (messagebird_account if name == "messagebird" else sinch_account)(org, fake)
    return name, fake, org, account, ApiKeyFactory(org=org, mode="prod")


def post_send(client_for, org, key, to, body="Your code is 482910"):
    response = client_for(key).post(f"/api/v1/orgs/{org.pk}/sms/send", {"to": to, "body": body}, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def test_send_through_the_worker_and_signed_reports_take_it_to_delivered(tenant, client_for, live_server):
    name, fake, org, account, key = tenant
    fake.auto_callbacks = tuple(STATUSES[name])
    send_id = post_send(client_for, org, key, "+14155550101")
    send = wait_for(lambda: (s := Send.objects.get(pk=send_id)).status == SendStatus.DELIVERED and s,
                    message="delivered through signed reports")
    assert (send.provider, send.sent_at is not None) == (name, True)
    assert send.provider_message_id in fake.messages and len(fake.creates()) == 1
    request = fake.creates()[0].json()
    callback = request.get("reportUrl") or request.get("callback_url")
    assert callback == f"{live_server.url}/api/v1/sms/webhooks/{name}/{org.pk}/status"
    assert all(status == 200 for _, status in fake.callback_results)
    assert sorted(Event.objects.filter(send_id=send_id).values_list("type", flat=True)) == [
        EventType.DELIVERED, EventType.SENT]


def test_inbound_keywords_replies_once_each_and_a_bad_signature_stores_nothing(tenant, live_server):
    name, fake, org, account, key = tenant
    url = f"{live_server.url}/api/v1/sms/webhooks/{name}/{org.pk}"
    sender = account.from_number

    secrets = account.secrets()

    def inbound(body, msg_id, **kw):
        if name == "messagebird":
            kw.setdefault("signing_key", secrets["signing_key"])
            return fake.send_inbound(url, originator=PHONE, recipient=sender, body=body, msg_id=msg_id, **kw)
        kw.setdefault("secret", secrets["callback_secret"])
        return fake.send_inbound(url, sender=PHONE, to=sender, body=body, msg_id=msg_id, **kw)

    bad = {"signing_key": "f" * 64} if name == "messagebird" else {"secret": "wrong"}
    assert inbound("STOP", "bad-1", **bad) == 403
    assert inbound("STOP", "bad-2", signed=False) == 403
    assert not InboundMessage.objects.filter(org=org).exists() and not Suppression.objects.filter(org=org).exists()

    assert inbound("STOP", "in-stop") == 200
    assert Suppression.objects.filter(org=org, phone_number=PHONE).exists()
    assert inbound("STOP", "in-stop") == 200  # the provider's retry: processed once, no second reply
    assert inbound("HELP", "in-help") == 200
    assert inbound("START", "in-start") == 200
    assert not Suppression.objects.filter(org=org, phone_number=PHONE).exists()
    assert inbound("thanks, see you", "in-plain") == 200

    wait_for(lambda: set(InboundMessage.objects.filter(org=org).exclude(reply_state="")
                         .values_list("reply_state", flat=True)) == {"sent"}, message="replies sent by the worker")
    assert len(fake.creates()) == 3  # STOP confirmation, HELP text, START confirmation: once each
    for request in fake.creates():
        body = request.json()
        to = body.get("recipients") or body.get("to")
        assert to == [PHONE.lstrip("+")]
    assert Send.objects.filter(org=org).count() == 0  # system messages are not the org's sends
    types = sorted(Event.objects.filter(org=org).values_list("type", flat=True))
    assert types == sorted([EventType.OPTED_OUT, EventType.OPTED_IN, EventType.REPLIED])


@pytest.fixture
def pair(celery_worker, fake_messagebird, fake_sinch):
    org = OrgFactory(send_rate_override=1000)
    messagebird_account(org, fake_messagebird, priority=1)
    sinch_account(org, fake_sinch, priority=2)
    return org, ApiKeyFactory(org=org, mode="prod"), fake_messagebird, fake_sinch


def accepted(send_id) -> Send:
    return wait_for(lambda: (s := Send.objects.get(pk=send_id)).provider_message_id and s, message="accepted")


def test_failover_to_the_next_provider_none_lost_none_twice_and_back_after_the_cool_down(pair, client_for):
    org, key, mb, sinch = pair
    mb.fail_all(503)
    ids = [post_send(client_for, org, key, f"+1415555020{i}", body=f"code {i}") for i in range(5)]
    sends = [accepted(i) for i in ids]
    assert {s.provider for s in sends} == {"sinch"}
    refs = [m["client_reference"] for m in sinch.messages.values()]
    assert sorted(refs) == sorted(ids)  # every send once through Sinch, none lost, none twice
    assert mb.messages == {} and 3 <= len(mb.creates()) <= 5
    assert provider_health(org_id=org.pk, provider="messagebird").state == "demoted"
    tries = len(mb.creates())
    extra = accepted(post_send(client_for, org, key, "+14155550299", body="while demoted"))
    assert extra.provider == "sinch" and len(mb.creates()) == tries  # demoted: not even tried

    mb.fail_all(None)
    wait_for(lambda: provider_health(org_id=org.pk, provider="messagebird").state == "healthy", timeout=10,
             message="cool-down over")
    back = accepted(post_send(client_for, org, key, "+14155550298", body="after the cool-down"))
    assert back.provider == "messagebird" and back.provider_message_id in mb.messages
    assert len(sinch.messages) == 6


def test_an_ambiguous_timeout_is_reconciled_never_resent_through_the_next_provider(pair, client_for):
    org, key, mb, sinch = pair
    mb.script(Reply(delay=3.5))  # created at MessageBird, answered after the worker's 2 s timeout
    send = accepted(post_send(client_for, org, key, "+14155550301"))
    assert send.provider == "messagebird" and send.provider_message_id in mb.messages
    time.sleep(0.3)  # nothing else may follow: no second create anywhere
    assert len(mb.messages) == 1 and sinch.creates() == []


def test_the_providers_opted_out_report_fails_the_send_and_suppresses(tenant, client_for):
    name, fake, org, account, key = tenant
    fake.block_recipient("+14155550444")
    send_id = post_send(client_for, org, key, "+14155550444")
    wait_for(lambda: Suppression.objects.filter(org=org, phone_number="+14155550444").exists(),
             message="carrier opt-out suppression")
    send = Send.objects.get(pk=send_id)
    assert send.status == SendStatus.FAILED and send.provider == name
    assert Suppression.objects.get(org=org, phone_number="+14155550444").reason == "carrier_opt_out"
