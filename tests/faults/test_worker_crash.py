"""Worker crash: `kill -9` of a Celery worker (whole process group) in the middle of 2,000 sends.

2,000 real queued sends (send_create: quota, audit, timeline, counters; 4 threads), each with a
unique To and its dispatch hand-off row, published to the private Redis by the workers' dispatchers. Worker A (prefork, 8 processes) dispatches to
the fake Twilio; once ~25 % are accepted, the next 4 creates are held by Twilio for 3 s (created at
once, answered late) and, as soon as they are in flight, worker A's process group is SIGKILLed: its
in-flight calls, its prefetched (unacked) tasks and any open transaction die with it. Worker B
starts and drains the queue; then beat runs the sweeper every second with short SMS_SWEEP_* settings
(queued after 3 s, sending after 2 s, reconcile deadline 5 s). Twilio reports `delivered` to the app.

Proven: every send ends terminal or parked for review with a reason; Twilio received at most one
create per send (per To), and every message Twilio holds is recorded on exactly one send (the in-flight
ones found by reconciliation, never re-sent); a send is parked only if Twilio has no message for it;
quota = sends; sms.sent / sms.delivered exactly once per delivered send.
"""
from __future__ import annotations

import ast
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.db.models import Count, Q

from orgs.models import QuotaUsage
from sms.models import DispatchHandoff, Event, Send, SendStatusChange
from sms.services.dispatch import REVIEW_PARKED
from sms.services.sends import send_create
from sms.statuses import SendStatus
from tests.fakes.twilio_server import Reply
from tests.faults.infra import wait_for, write_figures

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration, pytest.mark.slow]

SENDS = 2000
KILL_AFTER_ACCEPTED = 500
HELD_CREATES = 4
CREATE_THREADS = 4


def _to(i: int) -> str:
    return f"+1415555{i:04d}"


def _settled(send: dict) -> bool:
    return send["status"] in SendStatus.TERMINAL or (
        send["status"] == SendStatus.SENDING and send["review_reason"].startswith(REVIEW_PARKED))


def test_kill_9_mid_flight_loses_no_send_and_never_sends_twice(stack, make_tenant):
    tenant = make_tenant()
    twilio = stack.twilio
    twilio.auto_callbacks = ("delivered",)  # Twilio reports to the live app (gunicorn); `sent` may be skipped
    twilio.auto_callback_delay = 0.2

    # 2,000 real sends through the service (4 threads), each with its dispatch hand-off row (sms/services/handoff.py):
    # nothing is published until a worker's dispatcher takes the rows — worker A's, then (what it left) worker B's.
    def create_chunk(indexes: range) -> None:
        try:
            for i in indexes:
                send_create(org=tenant.org, api_key=tenant.key, to=_to(i), body=f"Your code is {100000 + i}")
        finally:
            connection.close()  # this thread's database connection

    t0 = time.monotonic()
    with ThreadPoolExecutor(CREATE_THREADS) as pool:
        list(pool.map(create_chunk, [range(k, SENDS, CREATE_THREADS) for k in range(CREATE_THREADS)]))
    create_seconds = time.monotonic() - t0
    assert DispatchHandoff.objects.count() == SENDS and stack.redis.client().llen("sms-send") == 0

    # Worker A dispatches; once ~25 % are accepted, the next creates are held by Twilio for 3 s
    # (created at once, answered late). As soon as they are in flight, kill -9 worker A's process group.
    t1 = time.monotonic()
    worker_a = stack.start_worker(concurrency=8)
    accepted = lambda: Send.objects.filter(org=tenant.org).exclude(provider_message_id="").count()  # noqa: E731
    wait_for(lambda: accepted() >= KILL_AFTER_ACCEPTED, timeout=90, interval=0.1, message="worker A progress")
    twilio.script([Reply(delay=3.0) for _ in range(HELD_CREATES)])
    wait_for(lambda: twilio.pending_script == 0, timeout=10, interval=0.005, message="held creates in flight")
    worker_a.kill9()
    killed_at = time.monotonic()
    at_kill = dict(Send.objects.filter(org=tenant.org).aggregate(
        queued=Count("id", filter=Q(status=SendStatus.QUEUED)),
        in_flight=Count("id", filter=Q(status=SendStatus.SENDING, provider_message_id="")),
        accepted=Count("id", filter=~Q(provider_message_id=""))))
    in_flight_ids = set(Send.objects.filter(org=tenant.org, status=SendStatus.SENDING, provider_message_id="")
                        .values_list("id", flat=True))
    tasks_left = stack.redis.client().llen("sms-send")
    unacked = stack.redis.client().hlen("unacked")
    assert at_kill["in_flight"] + at_kill["queued"] > 0

    # Worker B drains what is left in the queue; then beat runs the sweeper (stranded queued sends
    # whose tasks died unacked with worker A, and the sends worker A left in `sending`).
    handoffs_left = DispatchHandoff.objects.count()
    worker_b = stack.start_worker(concurrency=4)
    wait_for(lambda: not DispatchHandoff.objects.exists() and stack.redis.client().llen("sms-send") == 0, timeout=90,
             interval=0.1, message="hand-offs and queue drained")
    stack.start_beat()
    sends = wait_for(lambda: (rows := list(Send.objects.filter(org=tenant.org).values(
        "id", "to", "status", "review_reason", "provider_message_id", "error_code")))
        and all(_settled(s) for s in rows) and rows, timeout=90, interval=0.25,
        message="every send terminal or parked")
    total_seconds = time.monotonic() - t1
    assert len(sends) == SENDS

    # At most one create per send at Twilio (unique To per send), POSTs included.
    posts = Counter(r.form.get("To") for r in twilio.requests_to("/Messages.json", "POST"))
    cut_short_posts = posts.pop(None, 0)  # a POST whose body died with worker A (nothing created)
    created = Counter(m["to"] for m in twilio.messages.values())
    assert max(posts.values()) == 1, [to for to, n in posts.items() if n > 1][:10]
    assert max(created.values()) == 1
    # Every message Twilio holds is recorded on exactly one send, and vice versa.
    recorded = Counter(s["provider_message_id"] for s in sends if s["provider_message_id"])
    assert set(recorded) == set(twilio.messages) and max(recorded.values()) == 1

    by_status = Counter(s["status"] for s in sends)
    parked = [s for s in sends if s["status"] == SendStatus.SENDING]
    assert all(s["review_reason"].startswith(REVIEW_PARKED) and len(s["review_reason"]) > 30 for s in parked)
    # A send is parked only when Twilio really has no message for it (the call died before reaching it).
    assert all(created[s["to"]] == 0 and not s["provider_message_id"] for s in parked)
    # Everything Twilio accepted was delivered (callbacks, or the sweeper asking Twilio).
    assert by_status[SendStatus.DELIVERED] == len(twilio.messages)
    assert by_status[SendStatus.DELIVERED] + len(parked) == SENDS

    # Quota: one unit per send (nothing failed, nothing refunded); events at most once per (send, type).
    assert sum(QuotaUsage.objects.filter(org=tenant.org).values_list("used", flat=True)) == SENDS
    per_type = Counter(Event.objects.filter(org_id=tenant.org.pk, send__isnull=False).values_list("type", flat=True))
    assert per_type["sms.sent"] == per_type["sms.delivered"] == by_status[SendStatus.DELIVERED]
    assert not (Event.objects.filter(org_id=tenant.org.pk, send__isnull=False).values("send_id", "type")
                .annotate(n=Count("id")).filter(n__gt=1).exists())

    in_flight_outcomes = Counter(
        "found_by_reconciliation" if s["provider_message_id"] else "parked"
        for s in sends if s["id"] in in_flight_ids)
    by_sweeper = SendStatusChange.objects.filter(send__org=tenant.org, source="sweeper").values("send_id").distinct()
    sweeps = [ast.literal_eval(m) for m in re.findall(r"sends_sweep_task\[[^\]]+\] succeeded in [\d.]+s: (\{.*\})",
                                                      worker_b.output())]
    write_figures("worker_crash", {
        "sends": SENDS,
        "create_seconds_in_process": round(create_seconds, 1),
        "at_kill": {**at_kill, "handoffs_not_yet_published": handoffs_left, "tasks_still_queued": tasks_left, "unacked_tasks_lost_with_worker_a": unacked,
                    "seconds_after_worker_a_start": round(killed_at - t1, 1)},
        "in_flight_at_kill_outcome": dict(in_flight_outcomes),
        "sends_resolved_by_sweeper": by_sweeper.count(),
        "sweeps": len(sweeps),
        "stranded_queued_sends_requeued_by_sweeper": sum(s["requeued"] for s in sweeps),
        "final_status": dict(by_status),
        "twilio_create_posts": sum(posts.values()) + cut_short_posts,
        "twilio_posts_cut_short_by_the_kill": cut_short_posts,
        "twilio_messages": len(twilio.messages),
        "max_creates_per_send": max(created.values()),
        "seconds_from_worker_a_start_to_all_settled": round(total_seconds, 1),
    })
