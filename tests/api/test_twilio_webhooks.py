"""Twilio webhooks over HTTP: signature and AccountSid checks, keywords, TwiML, duplicates, status callbacks."""
import logging
import threading
import uuid
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test import Client

from audit.models import AuditEntry
from orgs.models import KeyMode, Role
from sms.compliance import default_help_text, default_opt_in_text, default_opt_out_text
from sms.models import Event, EventType, InboundMessage, Send, SendStatusChange, Suppression, SuppressionReason
from sms.statuses import SendStatus
from tests.factories import TEST_AUTH_TOKEN, ApiKeyFactory, OrgFactory, ProviderAccountFactory, SendFactory, \
    SuppressionFactory
from tests.helpers.twilio_signing import sign_twilio_request

pytestmark = pytest.mark.django_db

FROM = "+15551234567"
OTHER_TOKEN = "other_token_fedcba9876543210fedc"
_sid_counter = iter(range(1, 10**6))


def inbound_path(org_id) -> str:
    return f"/api/v1/sms/webhooks/twilio/{org_id}"


def status_path(org_id) -> str:
    return f"/api/v1/sms/webhooks/twilio/{org_id}/status"


def new_sid() -> str:
    return f"SM{next(_sid_counter):032x}"


def inbound_params(account, body, *, sid=None, from_=FROM, **extra) -> dict:
    return {"MessageSid": sid or new_sid(), "SmsSid": sid or "", "AccountSid": account.account_sid, "From": from_,
            "To": account.from_number, "Body": body, "NumMedia": "0", "ApiVersion": "2010-04-01", **extra}


def post(path, params, *, token=TEST_AUTH_TOKEN, signed_url=None, sign=True, client=None):
    """POST form-encoded like Twilio, signed over `signed_url` (default: the test server's own URL)."""
    signed_url = signed_url or f"http://testserver{path}"
    headers = {"HTTP_X_TWILIO_SIGNATURE": sign_twilio_request(signed_url, params, token)} if sign else {}
    return (client or Client()).post(path, urlencode(params), content_type="application/x-www-form-urlencoded",
                                     **headers)


def post_inbound(account, body, **kw):
    params_kw = {k: kw.pop(k) for k in ("sid", "from_") if k in kw}
    return post(inbound_path(account.org_id), inbound_params(account, body, **params_kw), **kw)


def twiml_message(text: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{text}</Message></Response>'.encode()


SILENT = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'


@pytest.fixture
def account(provider_account):
    return provider_account


@pytest.fixture(autouse=True)
def _no_publish(monkeypatch):
    from sms import tasks

    from sms.services import events as events_module

    monkeypatch.setattr(events_module, "_enqueue_publish", lambda event_id: None)


def nothing_stored():
    return (InboundMessage.objects.count(), Event.objects.count(), Suppression.objects.count(),
            AuditEntry.objects.filter(action__startswith="suppression").count()) == (0, 0, 0, 0)


# --- org resolution and signatures -------------------------------------------------------------


def test_validly_signed_reply_is_stored_and_answered_with_empty_twiml(org, account):
    response = post_inbound(account, "Thanks, see you at 5")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    assert response.content == SILENT
    inbound = InboundMessage.objects.get()
    assert (inbound.org_id, inbound.from_number, inbound.body, inbound.keyword) == (org.pk, FROM,
                                                                                  "Thanks, see you at 5", "")
    assert Event.objects.get().type == EventType.REPLIED


@pytest.mark.parametrize("org_id", [uuid.uuid4(), "not-a-uuid"])
def test_unknown_or_malformed_org_is_404(db, org_id):
    response = Client().post(inbound_path(org_id), {"Body": "STOP"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "org_not_found"


def test_org_without_provider_account_is_404(org):
    params = {"MessageSid": new_sid(), "AccountSid": "AC" + "0" * 32, "From": FROM, "Body": "STOP"}
    response = post(inbound_path(org.pk), params)
    assert response.status_code == 404
    assert nothing_stored()


def test_missing_signature_is_403_and_nothing_is_stored(org, account):
    response = post_inbound(account, "STOP", sign=False)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_signature"
    assert nothing_stored()


def test_wrong_signature_is_403_and_nothing_is_stored(org, account):
    params = inbound_params(account, "STOP")
    signature = sign_twilio_request(f"http://testserver{inbound_path(org.pk)}", {**params, "Body": "HELLO"},
                                    TEST_AUTH_TOKEN)
    response = Client().post(inbound_path(org.pk), urlencode(params), content_type="application/x-www-form-urlencoded",
                             HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == 403
    assert nothing_stored()


def test_signature_made_with_another_orgs_token_is_403(org, account):
    other = ProviderAccountFactory(org=OrgFactory(), auth_token=OTHER_TOKEN)
    # Signed with the other org's own token and AccountSid, posted to this org's URL.
    response = post(inbound_path(org.pk), inbound_params(other, "STOP"), token=OTHER_TOKEN)
    assert response.status_code == 403
    assert nothing_stored()


def test_correct_signature_but_other_account_sid_is_403(org, account):
    params = {**inbound_params(account, "STOP"), "AccountSid": "AC" + "f" * 32}
    response = post(inbound_path(org.pk), params)  # signed with this org's token over these params
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "account_mismatch"
    assert nothing_stored()


def test_every_param_is_signed_including_unknown_extras(org, account):
    params = inbound_params(account, "hi", FromCity="SPRINGFIELD", AddOns="{}", Empty="")
    assert post(inbound_path(org.pk), params).status_code == 200
    tampered = dict(params)
    signature = sign_twilio_request(f"http://testserver{inbound_path(org.pk)}", params, TEST_AUTH_TOKEN)
    tampered["FromCity"] = "SHELBYVILLE"
    tampered["MessageSid"] = new_sid()
    response = Client().post(inbound_path(org.pk), urlencode(tampered),
                             content_type="application/x-www-form-urlencoded", HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == 403


def test_public_base_url_is_what_gets_verified_when_set(org, account, settings):
    settings.SMS_PUBLIC_BASE_URL = "https://sms.example.com"
    path = inbound_path(org.pk)
    ok = post(path, inbound_params(account, "hi"), signed_url=f"https://sms.example.com{path}")
    assert ok.status_code == 200
    # The request's own URL (what Django sees behind a proxy) no longer validates.
    assert post(path, inbound_params(account, "hi")).status_code == 403
    assert InboundMessage.objects.count() == 1


def test_request_url_is_verified_when_public_base_url_is_unset(org, account, settings):
    settings.SMS_PUBLIC_BASE_URL = ""
    path = inbound_path(org.pk)
    assert post(path, inbound_params(account, "hi"), signed_url=f"https://sms.example.com{path}").status_code == 403
    assert post(path, inbound_params(account, "hi"), signed_url=f"http://testserver{path}").status_code == 200


def test_query_string_is_part_of_the_signed_url(org, account, settings):
    settings.SMS_PUBLIC_BASE_URL = "https://sms.example.com"
    path = inbound_path(org.pk) + "?tag=a"
    assert post(path, inbound_params(account, "hi"), signed_url=f"https://sms.example.com{path}").status_code == 200
    assert post(path, inbound_params(account, "hi"),
                signed_url=f"https://sms.example.com{inbound_path(org.pk)}").status_code == 403


def test_webhooks_are_post_only(org, account):
    response = Client().get(inbound_path(org.pk))
    assert response.status_code == 405
    assert Client().get(status_path(org.pk)).status_code == 405


def test_trailing_slash_does_not_redirect(org, account):
    assert Client().post(inbound_path(org.pk) + "/", {}).status_code == 404


# --- keywords ----------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["STOP", "Stop.", " stop ", "STOP!", "opt out", "Stop All", "STOPALL", "stopall",
                                  "Unsubscribe", "cancel", "END", "quit", "revoke", "OPTOUT", "opt-out"])
def test_opt_out_keyword_suppresses_emits_event_and_confirms(org, account, body):
    sid = new_sid()
    response = post_inbound(account, body, sid=sid)
    assert response.status_code == 200
    assert response.content == twiml_message(default_opt_out_text(org.name).replace("&", "&amp;"))
    suppression = Suppression.objects.get(org=org)
    assert (suppression.phone_number, suppression.reason, suppression.source, suppression.source_message_sid) == (
        FROM, SuppressionReason.STOP_KEYWORD, "webhook", sid)
    event = Event.objects.get(type=EventType.OPTED_OUT)
    assert event.inbound.message_sid == sid and event.data["phone_number"] == FROM
    assert InboundMessage.objects.get().keyword == "opt_out"
    assert AuditEntry.objects.filter(org=org, action="suppression.create", resource_id=FROM).count() == 1


def test_sentence_containing_stop_is_a_reply_flagged_possible_opt_out(org, account):
    response = post_inbound(account, "stop texting me at 5")
    assert response.content == SILENT
    assert not Suppression.objects.exists()
    inbound = InboundMessage.objects.get()
    assert inbound.keyword == "" and inbound.possible_opt_out is True
    event = Event.objects.get()
    assert event.type == EventType.REPLIED and event.data["possible_opt_out"] is True


def test_opt_out_confirmation_uses_the_orgs_text_xml_escaped(org, account):
    org.opt_out_text = "Bye <3 from A&B. Reply START"
    org.save(update_fields=["opt_out_text"])
    response = post_inbound(account, "STOP")
    assert response.content == twiml_message("Bye &lt;3 from A&amp;B. Reply START")
    assert response["Content-Type"] == "text/xml; charset=utf-8"


def test_opt_out_without_confirmation_is_silent_but_still_suppresses(org, account):
    org.opt_out_confirmation_enabled = False
    org.save(update_fields=["opt_out_confirmation_enabled"])
    assert post_inbound(account, "STOP").content == SILENT
    assert Suppression.objects.filter(org=org, phone_number=FROM).exists()


@pytest.mark.parametrize("body", ["HELP", "info", " Help! "])
def test_help_is_answered_with_the_default_help_text(org, account, body):
    response = post_inbound(account, body)
    assert response.content == twiml_message(default_help_text(org.name).replace("&", "&amp;"))
    assert InboundMessage.objects.get().keyword == "help"
    assert not Event.objects.exists()


def test_help_is_answered_even_to_a_suppressed_recipient(org, account):
    org.help_text = "Acme <support@acme.test> & more"
    org.save(update_fields=["help_text"])
    SuppressionFactory(org=org, phone_number=FROM, reason=SuppressionReason.STOP_KEYWORD)
    response = post_inbound(account, "HELP")
    assert response.content == twiml_message("Acme &lt;support@acme.test&gt; &amp; more")
    assert Suppression.objects.filter(org=org, phone_number=FROM).exists()


@pytest.mark.parametrize("reason", sorted(SuppressionReason.LIFTED_BY_START))
@pytest.mark.parametrize("body", ["START", "unstop", "Yes"])
def test_start_lifts_a_suppression_the_recipient_created(org, account, reason, body):
    SuppressionFactory(org=org, phone_number=FROM, reason=reason)
    response = post_inbound(account, body)
    assert response.content == twiml_message(default_opt_in_text(org.name).replace("&", "&amp;"))
    assert not Suppression.objects.filter(org=org, phone_number=FROM).exists()
    event = Event.objects.get(type=EventType.OPTED_IN)
    assert event.data["suppression_lifted"] is True
    assert AuditEntry.objects.filter(org=org, action="suppression.delete", resource_id=FROM).count() == 1


@pytest.mark.parametrize("reason", [SuppressionReason.MANUAL, SuppressionReason.IMPORT])
def test_start_does_not_lift_a_manual_or_imported_suppression(org, account, reason):
    SuppressionFactory(org=org, phone_number=FROM, reason=reason)
    response = post_inbound(account, "START")
    assert response.content == SILENT  # no "you are re-subscribed" while the block stays
    assert Suppression.objects.get(org=org, phone_number=FROM).reason == reason
    event = Event.objects.get(type=EventType.OPTED_IN)
    assert event.data["suppression_lifted"] is False and event.data["still_suppressed_reason"] == reason
    assert not AuditEntry.objects.filter(action="suppression.delete").exists()


def test_stop_then_start_round_trip(org, account):
    post_inbound(account, "STOP")
    assert Suppression.objects.filter(org=org, phone_number=FROM).exists()
    post_inbound(account, "START")
    assert not Suppression.objects.filter(org=org, phone_number=FROM).exists()
    assert sorted(Event.objects.values_list("type", flat=True)) == [EventType.OPTED_IN, EventType.OPTED_OUT]


def test_reply_is_linked_to_the_most_recent_send_to_that_number_in_that_org(org, account):
    SendFactory(org=org, to=FROM)
    latest = SendFactory(org=org, to=FROM)
    SendFactory(org=OrgFactory(), to=FROM)  # another org's later send is never linked
    post_inbound(account, "Sounds good")
    inbound = InboundMessage.objects.get()
    assert inbound.send_id == latest.id
    assert Event.objects.get().data["send_id"] == str(latest.id)


def test_suppression_is_per_org(org, account):
    other = ProviderAccountFactory(org=OrgFactory(), auth_token=OTHER_TOKEN)
    post(inbound_path(other.org_id), inbound_params(other, "STOP"), token=OTHER_TOKEN)
    assert Suppression.objects.get().org_id == other.org_id
    assert not Suppression.objects.filter(org=org).exists()


# --- duplicates --------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["STOP", "hello there", "HELP", "START"])
def test_same_message_sid_twice_is_processed_once_with_the_same_reply(org, account, body):
    SuppressionFactory(org=org, phone_number=FROM, reason=SuppressionReason.STOP_KEYWORD) if body == "START" else None
    sid = new_sid()
    first = post_inbound(account, body, sid=sid)
    counts = (Event.objects.count(), Suppression.objects.count(), AuditEntry.objects.count())
    second = post_inbound(account, body, sid=sid)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert InboundMessage.objects.count() == 1
    assert (Event.objects.count(), Suppression.objects.count(), AuditEntry.objects.count()) == counts


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_message_sid_are_processed_once():
    org = OrgFactory()
    account = ProviderAccountFactory(org=org)
    sid = new_sid()
    params = inbound_params(account, "STOP", sid=sid)
    barrier = threading.Barrier(6)
    responses = []

    def deliver():
        try:
            barrier.wait(timeout=10)
            responses.append(post(inbound_path(org.pk), params))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [r.status_code for r in responses] == [200] * 6
    assert len({r.content for r in responses}) == 1
    assert InboundMessage.objects.filter(message_sid=sid).count() == 1
    assert Event.objects.filter(type=EventType.OPTED_OUT).count() == 1
    assert Suppression.objects.filter(org=org).count() == 1
    assert AuditEntry.objects.filter(action="suppression.create").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_stops_with_different_sids_store_one_suppression():
    org = OrgFactory()
    account = ProviderAccountFactory(org=org)
    barrier = threading.Barrier(5)
    responses = []

    def deliver():
        try:
            barrier.wait(timeout=10)
            responses.append(post_inbound(account, "STOP"))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [r.status_code for r in responses] == [200] * 5
    assert InboundMessage.objects.count() == 5
    assert Suppression.objects.filter(org=org).count() == 1
    assert Event.objects.filter(type=EventType.OPTED_OUT).count() == 5  # one per inbound message
    assert AuditEntry.objects.filter(action="suppression.create").count() == 1


# --- status callbacks ----------------------------------------------------------------------------


def status_params(account, sid, status, **extra) -> dict:
    return {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
            "AccountSid": account.account_sid, "From": account.from_number, "To": FROM, "ApiVersion": "2010-04-01",
            **extra}


@pytest.fixture
def sent_send(org, account):
    return SendFactory(org=org, to=FROM, status=SendStatus.SENDING, provider="twilio", mode="prod",
                       provider_message_id=new_sid())


def test_status_callback_moves_the_send_and_emits_events_once(org, account, sent_send):
    sid = sent_send.provider_message_id
    response = post(status_path(org.pk), status_params(account, sid, "delivered"))
    assert response.status_code == 204
    sent_send.refresh_from_db()
    assert sent_send.status == SendStatus.DELIVERED and sent_send.delivered_at
    again = post(status_path(org.pk), status_params(account, sid, "delivered"))
    assert again.status_code == 204
    assert sorted(Event.objects.filter(send=sent_send).values_list("type", flat=True)) == [EventType.DELIVERED,
                                                                                          EventType.SENT]


def test_out_of_order_status_callback_never_moves_backwards(org, account, sent_send):
    sid = sent_send.provider_message_id
    post(status_path(org.pk), status_params(account, sid, "delivered"))
    post(status_path(org.pk), status_params(account, sid, "sent"))
    post(status_path(org.pk), status_params(account, sid, "sending"))
    sent_send.refresh_from_db()
    assert sent_send.status == SendStatus.DELIVERED
    assert list(SendStatusChange.objects.filter(send=sent_send).values_list("status", flat=True)) == ["delivered"]
    assert Event.objects.filter(send=sent_send, type=EventType.SENT).count() == 1


def test_status_callback_for_unknown_message_sid_is_acknowledged_and_logged(org, account, sent_send, caplog):
    unknown = new_sid()
    with caplog.at_level(logging.INFO, logger="sms.webhooks"):
        response = post(status_path(org.pk), status_params(account, unknown, "delivered"))
    assert response.status_code == 204
    assert unknown in caplog.text
    sent_send.refresh_from_db()
    assert sent_send.status == SendStatus.SENDING
    assert not Event.objects.exists()


def test_status_callback_for_another_orgs_send_is_treated_as_unknown(org, account):
    other = ProviderAccountFactory(org=OrgFactory(), auth_token=OTHER_TOKEN)
    foreign = SendFactory(org=other.org, status=SendStatus.SENT, provider="twilio", provider_message_id=new_sid())
    response = post(status_path(org.pk), status_params(account, foreign.provider_message_id, "delivered"))
    assert response.status_code == 204
    foreign.refresh_from_db()
    assert foreign.status == SendStatus.SENT


def test_undelivered_21610_suppresses_the_recipient_as_carrier_opt_out(org, account, sent_send):
    sid = sent_send.provider_message_id
    response = post(status_path(org.pk), status_params(account, sid, "undelivered", ErrorCode="21610"))
    assert response.status_code == 204
    sent_send.refresh_from_db()
    assert sent_send.status == SendStatus.UNDELIVERED and sent_send.error_code == "21610"
    suppression = Suppression.objects.get(org=org, phone_number=FROM)
    assert (suppression.reason, suppression.source_message_sid) == (SuppressionReason.CARRIER_OPT_OUT, sid)
    assert Event.objects.filter(send=sent_send, type=EventType.FAILED).count() == 1


@pytest.mark.parametrize("case", ["missing", "wrong_token", "wrong_account_sid"])
def test_status_callback_signature_and_account_checks(org, account, sent_send, case):
    sid = sent_send.provider_message_id
    params = status_params(account, sid, "delivered")
    if case == "missing":
        response = post(status_path(org.pk), params, sign=False)
    elif case == "wrong_token":
        response = post(status_path(org.pk), params, token=OTHER_TOKEN)
    else:
        response = post(status_path(org.pk), {**params, "AccountSid": "AC" + "e" * 32})
    assert response.status_code == 403
    sent_send.refresh_from_db()
    assert sent_send.status == SendStatus.SENDING
    assert not Event.objects.exists()


def test_status_callback_for_unknown_org_is_404(db):
    assert Client().post(status_path(uuid.uuid4()), {"MessageSid": "SM1"}).status_code == 404


# --- suppression applies on every send path ------------------------------------------------------


@pytest.mark.parametrize("mode", [KeyMode.TEST, KeyMode.PROD])
def test_number_that_texted_stop_is_not_sent_to_with_test_or_prod_keys(org, account, mode, monkeypatch):
    from sms import tasks

    dispatched = []
    monkeypatch.setattr(tasks.send_dispatch_task, "delay", lambda send_id: dispatched.append(send_id))
    post_inbound(account, "STOP")
    key = ApiKeyFactory(org=org, role=Role.MEMBER, mode=mode)
    client = Client(HTTP_X_API_KEY=key.raw_key)
    response = client.post(f"/api/v1/orgs/{org.pk}/sms/send", {"to": "(555) 123-4567", "body": "promo"},
                           content_type="application/json")
    assert response.status_code == 202
    data = response.json()
    assert data["status"] == "failed" and data["metadata"]["suppressed"] is True
    assert Send.objects.get().status == SendStatus.FAILED
    assert dispatched == []
