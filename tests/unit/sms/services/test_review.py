"""send_resolve_parked: an operator resolves a send parked after an ambiguous provider outcome."""
import pytest
from django.utils import timezone

from audit.models import AuditEntry
from audit.services import Actor
from orgs.quota import quota_status, sandbox_reserve, sandbox_status
from sendora_sms.errors import ValidationFailed
from sms.models import Event, EventType
from sms.services.dispatch import DispatchOutcome, send_dispatch
from sms.services.review import SendNotParked, send_resolve_parked
from sms.statuses import SendStatus
from tests.factories import ProviderAccountFactory, SendFactory

pytestmark = pytest.mark.django_db
OPERATOR = Actor.system("tests")


@pytest.fixture
def parked(org):
    ProviderAccountFactory(org=org)
    sandbox_reserve(org=org)  # a test send counts against the sandbox's daily cap, not the live quota
    return SendFactory(org=org, status=SendStatus.SENDING, attempts=1, provider_message_id="", mode="test",
                       provider="sandbox", to="+14155550177", sending_started_at=timezone.now(),
                       review_reason="parked: lost answer")


def test_failed_resolution_fails_refunds_and_emits_sms_failed(org, parked):
    send = send_resolve_parked(send=parked, resolution="failed", actor=OPERATOR)
    assert (send.status, send.error_code) == (SendStatus.FAILED, "operator")
    assert sandbox_status(org=org).used == 0 and quota_status(org=org).used == 0
    assert Event.objects.filter(send=send, type=EventType.FAILED).count() == 1
    assert AuditEntry.objects.filter(action="send.review_failed", resource_id=str(send.pk)).exists()


def test_resend_resolution_lets_exactly_one_retry_claim_it(org, parked, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        send = send_resolve_parked(send=parked, resolution="resend", actor=OPERATOR)
    assert send.review_reason.startswith("retrying: attempt 1")
    assert len(callbacks) == 1  # the retry task is enqueued after commit
    assert send_dispatch(send_id=send.pk, attempt=1).outcome == DispatchOutcome.ACCEPTED
    assert send_dispatch(send_id=send.pk, attempt=1).outcome == DispatchOutcome.SKIPPED
    send.refresh_from_db()
    assert send.status in (SendStatus.SENDING, SendStatus.SENT, SendStatus.DELIVERED) and send.provider_message_id


@pytest.mark.parametrize("state", [
    {"status": SendStatus.DELIVERED, "review_reason": ""},
    {"status": SendStatus.SENDING, "review_reason": "reconciling: timeout"},
    {"status": SendStatus.SENDING, "review_reason": "parked: x", "provider_message_id": "SM1"},
])
def test_only_parked_sends_can_be_resolved(org, state):
    send = SendFactory(org=org, **state)
    with pytest.raises(SendNotParked):
        send_resolve_parked(send=send, resolution="failed", actor=OPERATOR)
    send.refresh_from_db()
    assert send.status == state["status"]


def test_unknown_resolution_is_refused(parked):
    with pytest.raises(ValidationFailed):
        send_resolve_parked(send=parked, resolution="maybe", actor=OPERATOR)
