"""sms.services.inbound.inbound_handle: keywords, replies, events, and exactly-once per MessageSid."""
import itertools

import pytest

from sms.compliance import default_help_text, default_opt_in_text, default_opt_out_text
from sms.models import Event, EventType, InboundMessage, Suppression, SuppressionReason
from sms.providers.base import InboundSms
from sms.services.inbound import inbound_handle
from tests.factories import SendFactory, SuppressionFactory

pytestmark = pytest.mark.django_db

FROM = "+15551234567"
_sids = itertools.count(1)


@pytest.fixture(autouse=True)
def _no_publish(monkeypatch):
    from sms.services import events as events_module

    monkeypatch.setattr(events_module, "_enqueue_publish", lambda event_id: None)


def message(body, *, sid=None, from_=FROM) -> InboundSms:
    return InboundSms(message_id=sid or f"SM{next(_sids):032x}", account_id="AC1", from_number=from_,
                      to_number="+15005550006", body=body)


@pytest.mark.parametrize("body", ["STOP", "Stop.", " stop ", "STOP!", "opt out", "Stop All", "ＳＴＯＰ", "end 🛑"])
def test_opt_out_forms_suppress_with_stop_keyword_reason(org, body):
    reply = inbound_handle(org=org, message=message(body, sid="SMstop"))
    assert reply.keyword == "opt_out" and reply.text == default_opt_out_text(org.name)
    row = Suppression.objects.get(org=org)
    assert (row.phone_number, row.reason, row.source, row.source_message_sid) == (
        FROM, SuppressionReason.STOP_KEYWORD, "webhook", "SMstop")
    event = Event.objects.get()
    assert event.type == EventType.OPTED_OUT and event.inbound_id == reply.inbound.id
    assert event.data["suppression_created"] is True and event.data["body"] == body


def test_stop_from_an_already_suppressed_number_keeps_the_original_and_still_confirms(org):
    SuppressionFactory(org=org, phone_number=FROM, reason=SuppressionReason.MANUAL)
    reply = inbound_handle(org=org, message=message("STOP"))
    assert reply.text == default_opt_out_text(org.name)
    assert Suppression.objects.get().reason == SuppressionReason.MANUAL
    assert Event.objects.get().data["suppression_created"] is False


def test_custom_opt_out_text_is_used_and_disabling_confirmation_silences_it(org):
    org.opt_out_text = "  Unsubscribed from Acme.  "
    org.save(update_fields=["opt_out_text"])
    assert inbound_handle(org=org, message=message("STOP")).text == "Unsubscribed from Acme."
    org.opt_out_confirmation_enabled = False
    org.save(update_fields=["opt_out_confirmation_enabled"])
    assert inbound_handle(org=org, message=message("STOP", from_="+15551230000")).text is None
    assert Suppression.objects.count() == 2


@pytest.mark.parametrize("body", ["stop texting me at 5", "please stop", "Can you stop by at 5?", "STOP IT NOW"])
def test_non_keyword_messages_are_replies_never_suppressions(org, body):
    reply = inbound_handle(org=org, message=message(body))
    assert reply.keyword == "" and reply.text is None
    assert not Suppression.objects.exists()
    event = Event.objects.get()
    assert event.type == EventType.REPLIED


@pytest.mark.parametrize("body, flagged", [("stop texting me at 5", True), ("please remove me from your list", True),
                                           ("Can you stop by at 5?", False), ("Thanks!", False)])
def test_replies_carry_the_possible_opt_out_flag(org, body, flagged):
    inbound_handle(org=org, message=message(body))
    assert InboundMessage.objects.get().possible_opt_out is flagged
    assert Event.objects.get().data["possible_opt_out"] is flagged


def test_help_replies_with_custom_or_default_text_even_when_suppressed(org):
    SuppressionFactory(org=org, phone_number=FROM, reason=SuppressionReason.STOP_KEYWORD)
    assert inbound_handle(org=org, message=message("HELP")).text == default_help_text(org.name)
    org.help_text = "Acme support: help@acme.test"
    org.save(update_fields=["help_text"])
    assert inbound_handle(org=org, message=message("info")).text == "Acme support: help@acme.test"
    assert Suppression.objects.filter(phone_number=FROM).exists()
    assert not Event.objects.exists()


def test_start_lifts_stop_and_confirms(org):
    inbound_handle(org=org, message=message("STOP"))
    reply = inbound_handle(org=org, message=message("START"))
    assert reply.keyword == "opt_in" and reply.text == default_opt_in_text(org.name)
    assert not Suppression.objects.exists()
    assert Event.objects.get(type=EventType.OPTED_IN).data["suppression_lifted"] is True


def test_start_keeps_a_manual_suppression_and_does_not_claim_resubscription(org):
    SuppressionFactory(org=org, phone_number=FROM, reason=SuppressionReason.MANUAL)
    reply = inbound_handle(org=org, message=message("YES"))
    assert reply.text is None
    assert Suppression.objects.get().reason == SuppressionReason.MANUAL
    data = Event.objects.get(type=EventType.OPTED_IN).data
    assert (data["suppression_lifted"], data["still_suppressed_reason"]) == (False, "manual")


def test_start_from_an_unsuppressed_number_is_recorded(org):
    reply = inbound_handle(org=org, message=message("unstop"))
    assert reply.text == default_opt_in_text(org.name)
    assert Event.objects.get().data["suppression_lifted"] is False


def test_reply_links_the_latest_send_to_that_number_in_the_org(org, other_org):
    SendFactory(org=org, to=FROM)
    latest = SendFactory(org=org, to=FROM)
    SendFactory(org=org, to="+15550000000")
    SendFactory(org=other_org, to=FROM)
    reply = inbound_handle(org=org, message=message("ok", from_="1 (555) 123-4567"))
    assert reply.inbound.send_id == latest.id and reply.inbound.from_number == FROM


def test_reply_with_no_previous_send_has_no_link(org):
    assert inbound_handle(org=org, message=message("hi")).inbound.send_id is None


@pytest.mark.parametrize("body", ["STOP", "START", "HELP", "hello"])
def test_duplicate_message_sid_gets_the_same_reply_and_no_side_effects(org, body):
    first = inbound_handle(org=org, message=message(body, sid="SMdup"))
    snapshot = (InboundMessage.objects.count(), Event.objects.count(), Suppression.objects.count())
    second = inbound_handle(org=org, message=message(body, sid="SMdup"))
    assert second.duplicate is True and first.duplicate is False
    assert second.text == first.text and second.keyword == first.keyword
    assert (InboundMessage.objects.count(), Event.objects.count(), Suppression.objects.count()) == snapshot


def test_same_message_sid_in_two_orgs_is_two_messages(org, other_org):
    inbound_handle(org=org, message=message("STOP", sid="SMshared"))
    assert inbound_handle(org=other_org, message=message("STOP", sid="SMshared")).duplicate is False
    assert Suppression.objects.count() == 2


def test_unparseable_sender_is_stored_and_not_suppressed(org):
    reply = inbound_handle(org=org, message=message("STOP", from_="ACME"))
    assert reply.inbound.from_number == "ACME"
    assert not Suppression.objects.exists()
    # Nothing can be suppressed, so nothing may claim an opt-out: no confirmation, no sms.opted_out (#10).
    assert reply.text is None
    assert not Event.objects.exists()
