"""Issue #11 point 4: the dispatch state is an explicit field that every step sets, the API shows it (and the
reason when parked), the sweeper and the review queue select on it, and reconciliation records the provider's
own timestamps."""
import datetime as dt

import pytest
from django.utils import timezone

from audit.services import Actor
from sms.api.serializers import send_output
from sms.providers import SendOutcome
from sms.services import enqueue as enqueue_module
from sms.services.dispatch import DispatchOutcome, send_dispatch, send_reconcile
from sms.services.review import send_resolve_parked
from sms.statuses import DispatchState, SendStatus
from tests.fakes.twilio_server import Reply
from tests.factories import SendFactory
from tests.unit.sms.services.test_send_dispatch import TO, account, fake, queued  # noqa: F401

pytestmark = pytest.mark.django_db


def test_a_send_walks_pending_in_flight_awaiting_provider_then_null(account, fake):
    send = queued(account.org, dispatch_state=DispatchState.PENDING)
    assert send_output(send)["dispatch_state"] == "pending"
    assert send_dispatch(send_id=send.pk).outcome == DispatchOutcome.ACCEPTED
    send.refresh_from_db()
    assert (send.status, send.dispatch_state) == (SendStatus.SENDING, DispatchState.AWAITING_PROVIDER)
    from sms.services.status import send_transition
    from django.db import transaction

    with transaction.atomic():
        send_transition(send_id=send.pk, to_status=SendStatus.DELIVERED, source="callback")
    send.refresh_from_db()
    assert send.dispatch_state is None and send_output(send)["dispatch_state"] is None


def test_a_transient_error_is_retrying_and_only_its_retry_claims_it(account, fake):
    fake.script(Reply(status=503))
    send = queued(account.org, dispatch_state=DispatchState.PENDING)
    assert send_dispatch(send_id=send.pk).outcome == DispatchOutcome.RETRY
    send.refresh_from_db()
    assert send.dispatch_state == DispatchState.RETRYING and send_output(send)["review_reason"] is None
    assert send_dispatch(send_id=send.pk).outcome == DispatchOutcome.SKIPPED  # not the retry task
    assert send_dispatch(send_id=send.pk, attempt=1).outcome == DispatchOutcome.ACCEPTED


def test_parked_sends_show_why_and_an_operator_resend_goes_through_the_enqueue_module(
        account, fake, monkeypatch, django_capture_on_commit_callbacks):
    send = SendFactory(org=account.org, mode="prod", provider="twilio", to=TO, status=SendStatus.SENDING, attempts=1,
                       review_reason="parked: answer lost", dispatch_state=DispatchState.PARKED)
    out = send_output(send)
    assert (out["dispatch_state"], out["review_reason"]) == ("parked", "parked: answer lost")
    published = []
    monkeypatch.setattr(enqueue_module, "dispatch_publish", lambda **kw: published.append(kw))
    with django_capture_on_commit_callbacks(execute=True):
        send_resolve_parked(send=send, resolution="resend", actor=Actor.system("operator"))
    assert published == [{"send_id": str(send.pk), "attempt": 1}]
    send.refresh_from_db()
    assert send.dispatch_state == DispatchState.RETRYING


def test_the_review_service_imports_no_private_dispatch_helper():
    import ast
    import inspect

    from sms.services import review

    tree = ast.parse(inspect.getsource(review))
    imported = [a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and node.module == "sms.services.dispatch" for a in node.names]
    assert imported and not [name for name in imported if name.startswith("_")]


def test_reconciliation_records_the_providers_own_timestamps(account, fake):
    send = SendFactory(org=account.org, mode="prod", provider="twilio", to=TO, status=SendStatus.SENDING, attempts=1,
                       dispatch_state=DispatchState.RECONCILING)
    sent = timezone.now() - dt.timedelta(hours=2)
    delivered = sent + dt.timedelta(seconds=7)

    class Provider:
        name = "stub-provider-answers"

        def find_sent(self, *, to, since, body=None):
            return [SendOutcome(provider_message_id="SM" + "a" * 32, status=SendStatus.DELIVERED, segments=1,
                                raw={"status": "delivered", "date_sent": sent.isoformat(),
                                     "date_updated": delivered.isoformat()})]

    assert send_reconcile(send=send, provider=Provider(), source="sweeper") == DispatchOutcome.ACCEPTED
    send.refresh_from_db()
    assert send.status == SendStatus.DELIVERED and send.dispatch_state is None
    assert abs((send.sent_at - sent).total_seconds()) < 1
    assert abs((send.delivered_at - delivered).total_seconds()) < 1
