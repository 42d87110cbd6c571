"""Issue #11 point 5 (status callbacks): a callback that overtakes the worker is applied through the send id the
StatusCallback URL carries; a 21610 for a message we do not know still suppresses the signed `To`."""
import pytest

from sms.models import Event, Send, Suppression, SuppressionReason
from sms.statuses import DispatchState, SendStatus
from tests.api.test_twilio_webhooks import FROM, post, status_params, status_path
from tests.factories import SendFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_publish(monkeypatch):
    from sms.services import events as events_module

    monkeypatch.setattr(events_module, "_enqueue_publish", lambda event_id: None)


def test_a_callback_that_overtakes_the_worker_is_applied_by_send_id(org, provider_account):
    send = SendFactory(org=org, mode="prod", provider="twilio", to=FROM, status=SendStatus.SENDING, attempts=1,
                       provider_message_id="")
    assert send.dispatch_state == DispatchState.IN_FLIGHT
    sid = "SM" + "b" * 32
    path = f"{status_path(org.pk)}?send_id={send.pk}"
    response = post(path, status_params(provider_account, sid, "sent"))
    assert response.status_code == 204
    send.refresh_from_db()
    assert (send.provider_message_id, send.status, send.dispatch_state) == (sid, SendStatus.SENT,
                                                                             DispatchState.AWAITING_PROVIDER)
    assert list(Event.objects.filter(send=send).values_list("type", flat=True)) == ["sms.sent"]


def test_a_send_id_never_reassigns_a_stored_provider_id_or_reaches_another_org(org, other_org, provider_account):
    mine = SendFactory(org=org, mode="prod", provider="twilio", status=SendStatus.SENDING, provider_message_id="SMx")
    theirs = SendFactory(org=other_org, mode="prod", provider="twilio", status=SendStatus.SENDING,
                         provider_message_id="")
    for target in (mine, theirs):
        post(f"{status_path(org.pk)}?send_id={target.pk}", status_params(provider_account, "SM" + "c" * 32, "sent"))
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.provider_message_id == "SMx" and theirs.provider_message_id == ""


def test_21610_for_an_unknown_message_suppresses_the_signed_to(org, provider_account):
    params = status_params(provider_account, "SM" + "d" * 32, "failed", ErrorCode="21610")
    response = post(status_path(org.pk), params)
    assert response.status_code == 204
    suppression = Suppression.objects.get(org=org)
    assert (suppression.phone_number, suppression.reason) == (FROM, SuppressionReason.CARRIER_OPT_OUT)
    assert not Send.objects.exists()
