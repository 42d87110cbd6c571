"""Issue #11 point 5: Celery's SoftTimeLimitExceeded is never taken for an ambiguous provider outcome, and the
events sweeper holds no row lock while it talks to Redis."""
import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection

from sms.services import dispatch as dispatch_module
from sms.services.dispatch import send_dispatch
from sms.statuses import DispatchState, SendStatus
from tests.unit.sms.services.test_send_dispatch import account, fake, queued  # noqa: F401


def test_a_soft_time_limit_is_not_an_ambiguous_outcome(db, account, fake, monkeypatch):
    class SlowProvider:
        name = "twilio"

        def send(self, message):
            raise SoftTimeLimitExceeded()

    monkeypatch.setattr(dispatch_module, "provider_for", lambda account, mode: SlowProvider())
    send = queued(account.org, dispatch_state=DispatchState.PENDING)
    with pytest.raises(SoftTimeLimitExceeded):
        send_dispatch(send_id=send.pk)
    send.refresh_from_db()
    # Left for the sweeper as a worker that stopped mid-call; not marked reconciling by the worker itself.
    assert (send.status, send.dispatch_state, send.review_reason) == (SendStatus.SENDING, DispatchState.IN_FLIGHT, "")


@pytest.mark.django_db(transaction=True)
def test_events_publish_pending_holds_no_transaction_across_redis(monkeypatch, settings):
    from sms.models import EventType
    from sms.services import events as events_module
    from sms.services.events import event_record, events_publish_pending
    from tests.factories import OrgFactory, SendFactory

    org = OrgFactory()
    send = SendFactory(org=org)
    from django.db import transaction

    with transaction.atomic():
        event = event_record(org_id=org.pk, type=EventType.SENT, send=send, data={})
    from sms.models import Event

    Event.objects.filter(pk=event.pk).update(created_at=event.created_at.replace(year=2020))
    seen = []
    real = events_module._redis()

    class Watching:
        def pipeline(self, **kw):
            pipe = real.pipeline(**kw)
            execute = pipe.execute

            def watched():
                seen.append(connection.in_atomic_block)
                return execute()

            pipe.execute = watched
            return pipe

    monkeypatch.setattr(events_module, "_redis", lambda: Watching())
    assert events_publish_pending() == 1
    assert seen == [False]
