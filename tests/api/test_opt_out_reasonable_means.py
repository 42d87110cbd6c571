"""Issue #10 point 2 end to end: a signed Twilio inbound with a repeated or Spanish keyword acts on it; a
misspelt one is flagged `possible_opt_out` for review and never suppresses."""
import pytest

from sms.models import Event, InboundMessage, Suppression, SuppressionReason
from tests.api.test_twilio_webhooks import inbound_params, inbound_path, post

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_publish(monkeypatch):
    from sms.services import events as events_module

    monkeypatch.setattr(events_module, "_enqueue_publish", lambda event_id: None)


@pytest.mark.parametrize("body", ["stop stop", "STOP. STOP!", "ALTO", "Darme de baja"])
def test_repeated_and_spanish_opt_outs_suppress(org, provider_account, body):
    response = post(inbound_path(org.pk), inbound_params(provider_account, body))
    assert response.status_code == 200
    assert Suppression.objects.get().reason == SuppressionReason.STOP_KEYWORD
    assert Event.objects.filter(type="sms.opted_out").count() == 1
    assert b"<Message>" in response.content  # the confirmation


def test_spanish_help_is_answered(org, provider_account):
    response = post(inbound_path(org.pk), inbound_params(provider_account, "AYUDA"))
    assert response.status_code == 200 and b"<Message>" in response.content
    assert InboundMessage.objects.get().keyword == "help"


@pytest.mark.parametrize("body", ["stpo", "unsubscibe please"])
def test_a_misspelt_opt_out_is_flagged_never_suppressed(org, provider_account, body):
    response = post(inbound_path(org.pk), inbound_params(provider_account, body))
    assert response.status_code == 200 and b"<Message>" not in response.content
    inbound = InboundMessage.objects.get()
    assert inbound.possible_opt_out is True and inbound.keyword == ""
    assert not Suppression.objects.exists()
    assert Event.objects.get(type="sms.replied").data["possible_opt_out"] is True
