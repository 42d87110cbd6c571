"""Webhook storm: 1,000 signed Twilio webhooks — status callbacks and inbound messages, with duplicate
deliveries and statuses out of order — from 32 threads at once against the app under gunicorn.

Status callbacks for 200 accepted sends (750 POSTs), in four patterns: in order + a duplicate;
`delivered` before `sent`; `sent`, `undelivered`, a duplicate and a late `sent`; early Twilio statuses
(`queued`, `sending`) then `sent`, `delivered` twice. Inbound (250 POSTs, 180 MessageSids): STOP
variants from 100 numbers (20 of them twice, with different MessageSids), HELP and plain replies, and
re-deliveries of the same MessageSid. Everything is shuffled and posted concurrently.

Proven: no 5xx (no error at all: 204 / 200); no lost STOP — every number that sent one is suppressed,
with one sms.opted_out per STOP message; each MessageSid stored once; no status regression — every send
ends in the status its pattern implies and its timeline only moves forward; each event exactly once
per (send, type).
"""
from __future__ import annotations

import random
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.utils import timezone

from sms.models import Event, InboundMessage, Send, SendStatusChange, Suppression
from sms.statuses import RANK, SendStatus
from tests.factories import TEST_AUTH_TOKEN
from tests.faults.conftest import http
from tests.faults.infra import write_figures
from tests.helpers.twilio_signing import sign_twilio_request

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration, pytest.mark.slow]

SENDS = 200
THREADS = 32
PATTERNS = [  # (callbacks in the order they are queued — the storm shuffles them anyway, final status)
    (["sent", "delivered", "delivered"], SendStatus.DELIVERED),
    (["delivered", "sent", "sent"], SendStatus.DELIVERED),
    (["sent", "undelivered", "undelivered", "sent"], SendStatus.UNDELIVERED),
    (["queued", "sending", "sent", "delivered", "delivered"], SendStatus.DELIVERED),
]
STOP_WORDS = ["STOP", "stop", "Unsubscribe", "cancel", "END", "quit", "STOPALL", "  Stop  "]


def _sid(prefix: str, n: int) -> str:
    return f"{prefix}{n:032d}"


def test_a_thousand_concurrent_signed_webhooks_lose_no_stop_and_never_regress_a_status(stack, make_tenant):
    tenant = make_tenant()
    org, account = tenant.org, tenant.account
    now = timezone.now()
    sends = Send.objects.bulk_create([
        Send(org=org, api_key=tenant.key, to=f"+1415555{j:04d}", from_number=account.from_number, body=f"m{j}",
             status=SendStatus.SENDING, mode="prod", provider="twilio", provider_message_id=_sid("SM", j),
             attempts=1, sending_started_at=now) for j in range(SENDS)])
    status_url = f"{stack.app.url}/api/v1/sms/webhooks/twilio/{org.pk}/status"
    inbound_url = f"{stack.app.url}/api/v1/sms/webhooks/twilio/{org.pk}"

    jobs = []  # (kind, url, params)
    for j, send in enumerate(sends):
        statuses, _ = PATTERNS[j % len(PATTERNS)]
        for status in statuses:
            params = {"AccountSid": account.account_sid, "MessageSid": send.provider_message_id, "SmsSid":
                      send.provider_message_id, "MessageStatus": status, "SmsStatus": status, "To": send.to,
                      "From": account.from_number, "ApiVersion": "2010-04-01"}
            if status == "undelivered":
                params["ErrorCode"] = "30003"
            jobs.append(("status", status_url, params))
    n_status = len(jobs)

    def inbound(sid_n: int, phone: str, body: str) -> tuple:
        return ("inbound", inbound_url, {"AccountSid": account.account_sid, "MessageSid": _sid("SMin", sid_n),
                                         "SmsSid": _sid("SMin", sid_n), "From": phone, "To": account.from_number,
                                         "Body": body, "NumMedia": "0", "ApiVersion": "2010-04-01"})

    stop_numbers = [f"+1415555{j:04d}" for j in range(100)]  # recipients of sends: the reply links to them
    inbound_jobs = [inbound(k, phone, STOP_WORDS[k % len(STOP_WORDS)]) for k, phone in enumerate(stop_numbers)]
    inbound_jobs += [inbound(100 + k, stop_numbers[k * 5], "stop") for k in range(20)]  # a second STOP
    other_numbers = [f"+1628555{k:04d}" for k in range(60)]
    inbound_jobs += [inbound(200 + k, phone, "HELP" if k % 2 else "ok thanks, see you at 5")
                     for k, phone in enumerate(other_numbers)]
    rng = random.Random(6)
    stop_sids = [j for j in inbound_jobs if j[2]["Body"] not in ("HELP", "ok thanks, see you at 5")]
    others = [j for j in inbound_jobs if j not in stop_sids]
    inbound_jobs += rng.sample(stop_sids, 20) + [rng.choice(others) for _ in range(50)]  # re-deliveries
    jobs += inbound_jobs
    rng.shuffle(jobs)
    assert len(jobs) == 1000 and n_status == 750

    def post(job) -> dict:
        kind, url, params = job
        started = time.monotonic()
        try:
            response = http().post(url, data=params, timeout=60, headers={
                "X-Twilio-Signature": sign_twilio_request(url, params, TEST_AUTH_TOKEN)})
            status, text = response.status_code, response.text
        except requests.RequestException as exc:
            status, text = None, repr(exc)
        return {"kind": kind, "status": status, "text": text, "seconds": time.monotonic() - started}

    t0 = time.monotonic()
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(post, jobs))
    wall = time.monotonic() - t0

    # No 5xx — no error at all: status callbacks 204, inbound 200 TwiML.
    by_kind = {kind: Counter(r["status"] for r in results if r["kind"] == kind) for kind in ("status", "inbound")}
    assert by_kind == {"status": Counter({204: n_status}), "inbound": Counter({200: 250})}, \
        [r for r in results if r["status"] not in (200, 204)][:3]
    assert all("<Response" in r["text"] for r in results if r["kind"] == "inbound")

    # No lost STOP: every number that sent one is suppressed; one sms.opted_out per STOP message.
    suppressed = set(Suppression.objects.filter(org=org).values_list("phone_number", flat=True))
    assert set(stop_numbers) <= suppressed and not suppressed & set(other_numbers)
    stored = Counter(InboundMessage.objects.filter(org=org).values_list("message_sid", flat=True))
    assert len(stored) == 180 and max(stored.values()) == 1
    opted_out = Counter(Event.objects.filter(org_id=org.pk, type="sms.opted_out").values_list("inbound_id", flat=True))
    assert len(opted_out) == 120 and max(opted_out.values()) == 1

    # No status regression: final status as the pattern implies, timelines strictly forward.
    final = dict(Send.objects.filter(org=org).values_list("id", "status"))
    for j, send in enumerate(sends):
        assert final[send.id] == PATTERNS[j % len(PATTERNS)][1], (j, final[send.id])
    timelines: dict = {}
    for send_id, status in SendStatusChange.objects.filter(send__org=org).order_by("created_at", "id") \
            .values_list("send_id", "status"):
        timelines.setdefault(send_id, []).append(status)
    for send_id, statuses in timelines.items():
        ranks = [RANK[s] for s in statuses]
        assert ranks == sorted(set(ranks)), (send_id, statuses)
    assert Send.objects.filter(org=org, status=SendStatus.UNDELIVERED).exclude(error_code="30003").count() == 0

    # Each event exactly once per (send, type).
    per_pair = Counter(Event.objects.filter(org_id=org.pk, send__isnull=False).values_list("send_id", "type"))
    assert max(per_pair.values()) == 1
    expected = Counter()
    for j in range(SENDS):
        expected["sms.sent"] += 1
        expected["sms.failed" if PATTERNS[j % 4][1] == SendStatus.UNDELIVERED else "sms.delivered"] += 1
    assert Counter(t for _, t in per_pair) == expected

    latency = sorted(r["seconds"] for r in results)
    write_figures("webhook_storm", {
        "requests": len(results), "threads": THREADS, "status_callbacks": n_status, "inbound": 250,
        "inbound_message_sids": len(stored), "responses": {k: dict(v) for k, v in by_kind.items()},
        "wall_seconds": round(wall, 1), "requests_per_second": round(len(results) / wall),
        "latency_ms": {"p50": round(statistics.median(latency) * 1000),
                       "p99": round(latency[int(len(latency) * 0.99)] * 1000), "max": round(latency[-1] * 1000)},
        "stop_numbers_suppressed": len(set(stop_numbers) & suppressed), "opted_out_events": len(opted_out),
        "final_status": dict(Counter(final.values())),
        "timeline_rows": sum(len(v) for v in timelines.values()),
        "events_by_type": dict(Counter(t for _, t in per_pair)),
    })
