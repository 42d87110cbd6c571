"""send_output (the send endpoint's plain-dict renderer) must render exactly what SendOutput does."""
import datetime as dt
import json

import pytest
from django.utils import timezone

from sms.api.serializers import SendOutput, send_output
from sms.models import Send
from tests.factories import SendFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("fields", [
    {},  # queued: blank optional strings → null, no timestamps but created/updated
    {"status": "failed", "error_code": "suppressed", "error_message": "On the list.",
     "metadata": {"suppressed": True, "user": {"id": 42, "tags": ["a", None]}, "n": None}},
    {"status": "suppressed", "suppressed_reason": "recent_duplicate", "category": "marketing",
     "body": "Ünïcödé ✓ body", "encoding": "UCS-2", "segments": 3},
    {"status": "delivered", "provider": "twilio", "provider_message_id": "SM" + "a" * 32, "mode": "prod",
     "sent_at": dt.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=dt.timezone.utc),
     "delivered_at": dt.datetime(2026, 1, 2, 3, 4, 6, tzinfo=dt.timezone(dt.timedelta(hours=2)))},
    {"status": "undelivered", "failed_at": timezone.now(), "error_code": "30003", "error_message": ""},
])
def test_send_output_renders_exactly_like_the_serializer(fields):
    send = Send.objects.get(pk=SendFactory(**fields).pk)  # as read back from the database
    assert send_output(send) == SendOutput(send).data
    assert json.dumps(send_output(send)) == json.dumps(SendOutput(send).data)  # same keys, same order


def test_send_output_of_an_unsaved_instance_matches_too():
    """The send endpoint renders the instance it just inserted (never re-read)."""
    send = SendFactory.build(metadata={"k": "v"}, created_at=timezone.now(), updated_at=timezone.now())
    assert send_output(send) == SendOutput(send).data
