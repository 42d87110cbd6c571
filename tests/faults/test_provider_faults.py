"""Provider faults: the fake Twilio answers 500, 503, 429 + Retry-After, too late (past
TWILIO_HTTP_TIMEOUT = 1 s), drops the connection, or answers garbage — to a real worker, over HTTP.

Each case is one send posted to the app (gunicorn), dispatched by a real worker (retries: base 0.2 s,
cap 2 s, SMS_DISPATCH_MAX_RETRIES = 2), with beat sweeping every second (reconcile deadline 5 s). The
fake then reports `sent`/`delivered` for what it created. Proven, per case: the number of create
POSTs Twilio received (retries follow the policy: transient → retried, Retry-After honoured, budget
exhausted → failed with the provider's code and the quota unit refunded; ambiguous → NEVER a second
create: reconciled by asking Twilio, found → recorded, not found → parked for review with a reason),
and a final state that says what happened (status + error_code / review_reason / provider id).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest
from django.db.models import Sum

from orgs.models import QuotaUsage
from sms.models import Send
from sms.services.dispatch import REVIEW_PARKED
from sms.statuses import SendStatus
from tests.fakes.twilio_server import Reply
from tests.faults.conftest import http
from tests.faults.infra import wait_for, write_figures

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration, pytest.mark.slow]


@dataclass
class Case:
    name: str
    replies: list
    posts: int  # create POSTs Twilio must receive for this send, no more
    status: str  # final status
    error_code: str = ""
    parked: bool = False
    min_retry_gap: float = 0.0  # seconds between the first and second POST (Retry-After)
    to: str = ""
    send_id: str = ""
    timing: dict = field(default_factory=dict)


CASES = [
    Case("503 then ok: transient, retried", [Reply(status=503)], posts=2, status=SendStatus.DELIVERED),
    Case("429 Retry-After: 1 honoured", [Reply(status=429, headers={"Retry-After": "1"})], posts=2,
         status=SendStatus.DELIVERED, min_retry_gap=1.0),
    Case("502 with an HTML body: transient, retried", [Reply(status=502, body="<html>Bad Gateway</html>")],
         posts=2, status=SendStatus.DELIVERED),
    Case("503 x3: retry budget spent → failed 20503", [Reply(status=503)] * 3, posts=3,
         status=SendStatus.FAILED, error_code="20503"),
    Case("400 with a garbage body: permanent", [Reply(status=400, body="<<garbage>>")], posts=1,
         status=SendStatus.FAILED, error_code="400"),
    Case("500, message created: ambiguous → found", [Reply(status=500, create=True)], posts=1,
         status=SendStatus.DELIVERED),
    Case("500, nothing created: ambiguous → parked", [Reply(status=500)], posts=1,
         status=SendStatus.SENDING, parked=True),
    Case("slow past the client timeout, created: found", [Reply(delay=2.5)], posts=1, status=SendStatus.DELIVERED),
    Case("connection dropped, nothing created: parked", [Reply(drop=True)], posts=1,
         status=SendStatus.SENDING, parked=True),
    Case("200 with a garbage body, created: found", [Reply(status=200, body="garbage, not JSON")], posts=1,
         status=SendStatus.DELIVERED),
]


def test_provider_faults_follow_the_retry_policy_and_never_blindly_resend(stack, make_tenant):
    tenant = make_tenant()
    twilio = stack.twilio
    twilio.auto_callbacks = ("sent", "delivered")
    twilio.auto_callback_delay = 0.3
    stack.start_worker(concurrency=2)
    stack.start_beat()

    # One case at a time: the fake's script is consumed by whichever create comes next.
    for n, case in enumerate(CASES):
        case.to = f"+1415555{9000 + n:04d}"
        twilio.script(case.replies)
        started = time.monotonic()
        response = http().post(stack.app.url + tenant.send_path, json={"to": case.to, "body": f"case {n}"},
                               headers={"x-api-key": tenant.key.raw_key}, timeout=10)
        assert response.status_code == 202, response.text
        case.send_id = response.json()["id"]
        wait_for(lambda: twilio.create_attempts(to=case.to) >= case.posts and twilio.pending_script == 0
                 and Send.objects.filter(pk=case.send_id).exclude(status=SendStatus.QUEUED).exists(),
                 timeout=20, message=case.name)
        case.timing["seconds_to_last_post"] = round(time.monotonic() - started, 2)

    def final(case: Case) -> bool:
        send = Send.objects.get(pk=case.send_id)
        if case.parked:
            return send.review_reason.startswith(REVIEW_PARKED)
        return send.status == case.status

    wait_for(lambda: all(final(c) for c in CASES), timeout=30, interval=0.2, message="every case settled")
    time.sleep(1.5)  # one more sweep: nothing may re-send what is already settled

    figures = {}
    for case in CASES:
        send = Send.objects.get(pk=case.send_id)
        posts = [r for r in twilio.requests_to("/Messages.json", "POST") if r.form.get("To") == case.to]
        created = twilio.count_creates(to=case.to)
        assert len(posts) == case.posts, (case.name, len(posts))
        assert send.status == case.status, (case.name, send.status, send.error_code, send.review_reason)
        assert send.attempts == case.posts, (case.name, send.attempts)
        if case.min_retry_gap:
            assert posts[1].at - posts[0].at >= case.min_retry_gap, case.name
        if len(posts) > 1 and not case.min_retry_gap:
            # full-jitter backoff: retry k waits uniform(0, min(cap 2 s, 0.2 s * 2^(k-1))), plus scheduling slack
            assert all(b.at - a.at <= min(2.0, 0.2 * 2 ** k) + 1.0
                       for k, (a, b) in enumerate(zip(posts, posts[1:]))), case.name
        if case.status == SendStatus.FAILED:
            assert send.error_code == case.error_code and send.error_message, case.name
            assert not send.provider_message_id and created == 0
        elif case.parked:
            assert created == 0 and not send.provider_message_id, case.name
            assert len(send.review_reason) > 40, send.review_reason
            # it was reconciled (Twilio asked), not re-sent
            assert any(r.query.get("To") == [case.to] for r in twilio.requests_to("/Messages.json", "GET"))
        else:
            assert created == 1 and send.provider_message_id in twilio.messages, case.name
            assert not send.review_reason and not send.error_code
        figures[case.name] = {
            "create_posts": len(posts), "messages_created": created, "status": send.status,
            "error_code": send.error_code, "review_reason": send.review_reason[:60],
            "retry_gaps_s": [round(b.at - a.at, 2) for a, b in zip(posts, posts[1:])],
        }

    # Quota: one unit per send, refunded for the two that provably never reached a handset.
    used = QuotaUsage.objects.filter(org=tenant.org).aggregate(n=Sum("used"))["n"]
    assert used == len(CASES) - sum(1 for c in CASES if c.status == SendStatus.FAILED)
    write_figures("provider_faults", figures)
