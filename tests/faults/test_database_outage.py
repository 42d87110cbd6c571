"""Database outage: PostgreSQL is cut from under the app while it serves traffic, then restored.

The app (gunicorn, persistent connections, DB_CONN_MAX_AGE=60) reaches PostgreSQL only through the
TCP proxy of tests/faults/infra.py. `cut()` resets every open connection (mid-query, mid-transaction,
mid-COMMIT — whatever each was doing) and refuses new ones; `restore()` listens again. The cluster
itself is never restarted.

Traffic: send requests (each with its own Idempotency-Key and recipient), signed inbound webhooks,
send lists and /health, from 16 threads. Proven: no 500 and no dropped connection — requests in the gap
are 503 `service_unavailable` in the contract's shape with Retry-After; the app recovers by itself
(every request started after the restore succeeds); retrying each 503 with its Idempotency-Key (and
each webhook, as Twilio does) yields exactly one send per request and one stored inbound per
MessageSid; no half-written send: quota used == queued sends, and every send has its `sms.send`
audit entry, its timeline row and its day counter.
"""
from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db.models import Sum

from audit.models import AuditEntry
from orgs.models import QuotaUsage
from sms.models import InboundMessage, Send, SendDailyCount, SendStatusChange
from tests.factories import TEST_AUTH_TOKEN
from tests.faults.conftest import http
from tests.faults.infra import write_figures
from tests.helpers.twilio_signing import sign_twilio_request

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration, pytest.mark.slow]

REQUESTS = 400
TRAFFIC_SECONDS = 9.0
CUT_AT, CUT_FOR = 2.5, 3.0
RECOVERY_GRACE = 0.5  # requests starting this long after the restore must all succeed


def _request(app_url, tenant, i) -> dict:
    """Request i: mostly sends, every 5th an inbound webhook, every 10th a list or /health."""
    kind = "send"
    if i % 10 == 9:
        kind = "health" if i % 20 == 19 else "list"
    elif i % 5 == 4:
        kind = "inbound"
    started = time.monotonic()
    try:
        if kind == "send":
            response = http().post(app_url + tenant.send_path, json={"to": f"+1415555{i:04d}", "body": f"Code {i}"},
                                   headers={"x-api-key": tenant.key.raw_key, "Idempotency-Key": f"req-{i}"},
                                   timeout=30)
        elif kind == "inbound":
            path = f"/api/v1/sms/webhooks/twilio/{tenant.org.pk}"
            params = {"AccountSid": tenant.account.account_sid, "MessageSid": f"SM{i:032d}",
                      "From": f"+1628555{i:04d}", "To": tenant.account.from_number, "Body": "thanks!"}
            response = http().post(app_url + path, data=params, timeout=30, headers={
                "X-Twilio-Signature": sign_twilio_request(app_url + path, params, TEST_AUTH_TOKEN)})
        elif kind == "list":
            response = http().get(app_url + f"/api/v1/orgs/{tenant.org.pk}/sms/sends?limit=20",
                                  headers={"x-api-key": tenant.key.raw_key}, timeout=30)
        else:
            response = http().get(app_url + "/health", timeout=30)
        status = response.status_code
        body = response.json() if "json" in response.headers.get("Content-Type", "") else {}
        retry_after = response.headers.get("Retry-After")
        replayed = response.headers.get("Idempotent-Replayed") == "true"
    except requests.RequestException as exc:
        status, body, retry_after, replayed = None, {"exception": repr(exc)}, None, False
    return {"i": i, "kind": kind, "status": status, "body": body, "retry_after": retry_after,
            "replayed": replayed, "start": started, "end": time.monotonic()}


OK = {"send": 202, "inbound": 200, "list": 200, "health": 200}


def test_database_cut_gives_503s_then_recovers_without_restart_and_leaves_no_half_written_send(
        stack, make_tenant):
    tenant = make_tenant()
    app = stack.app.url
    events: dict[str, float] = {}

    def fault() -> None:
        time.sleep(CUT_AT)
        events["reset_connections"] = stack.proxy.cut()
        events["cut"] = time.monotonic()
        time.sleep(CUT_FOR)
        stack.proxy.restore()
        events["restored"] = time.monotonic()

    t0 = time.monotonic()

    def paced(i: int) -> dict:
        time.sleep(max(0.0, t0 + i * TRAFFIC_SECONDS / REQUESTS - time.monotonic()))
        return _request(app, tenant, i)

    fault_thread = threading.Thread(target=fault)
    fault_thread.start()
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(paced, range(REQUESTS)))
    fault_thread.join()

    # Never a 500, never a dropped connection: the expected success, or 503 in the contract's shape.
    for r in results:
        assert r["status"] in (OK[r["kind"]], 503), r
        if r["status"] == 503:
            if r["kind"] == "health":
                assert r["body"]["checks"]["database"].startswith("error"), r
                continue
            assert r["body"]["error"]["code"] == "service_unavailable", r
            assert set(r["body"]["error"]) == {"code", "message", "details"} and r["retry_after"], r
    in_gap = [r for r in results if r["start"] >= events["cut"] and r["end"] <= events["restored"]]
    assert len(in_gap) >= 80 and all(r["status"] == 503 for r in in_gap), Counter(r["status"] for r in in_gap)
    # Recovered by itself: everything started after the restore (plus a short grace) succeeded.
    after = [r for r in results if r["start"] >= events["restored"] + RECOVERY_GRACE]
    assert len(after) >= 100 and all(r["status"] == OK[r["kind"]] for r in after), \
        [r for r in after if r["status"] != OK[r["kind"]]][:3]
    first_ok_after = min((r["end"] for r in results if r["start"] >= events["restored"]
                          and r["status"] == OK[r["kind"]]), default=None)

    # Clients retry their 503s: sends with the same Idempotency-Key, webhooks as Twilio re-delivers.
    failed = [r for r in results if r["status"] == 503 and r["kind"] in ("send", "inbound")]
    retries = [_request(app, tenant, r["i"]) for r in failed]
    assert all(r["status"] == OK[r["kind"]] for r in retries), [r for r in retries if r["status"] >= 300][:3]
    committed_before_503 = sum(1 for r in retries if r["kind"] == "send" and r["replayed"])

    # Exactly one send per send request, one inbound per MessageSid.
    send_requests = [r["i"] for r in results if r["kind"] == "send"]
    sends = list(Send.objects.filter(org=tenant.org).values("id", "to", "status", "idempotency_key"))
    assert sorted(s["idempotency_key"] for s in sends) == sorted(f"req-{i}" for i in send_requests)
    assert len({s["to"] for s in sends}) == len(sends)
    inbound_requests = [r["i"] for r in results if r["kind"] == "inbound"]
    assert sorted(InboundMessage.objects.filter(org=tenant.org).values_list("message_sid", flat=True)) == \
        sorted(f"SM{i:032d}" for i in inbound_requests)

    # No half-written send: quota, audit entry, timeline row and day counter for every send, none for others.
    assert all(s["status"] == "queued" for s in sends)  # no worker runs in this test
    quota_used = QuotaUsage.objects.filter(org=tenant.org).aggregate(n=Sum("used"))["n"]
    assert quota_used == len(sends)
    audited = Counter(AuditEntry.objects.filter(org_id=tenant.org.pk, action="sms.send", outcome="ok")
                      .values_list("resource_id", flat=True))
    assert set(audited) == {str(s["id"]) for s in sends} and max(audited.values()) == 1
    timeline = Counter(SendStatusChange.objects.filter(send__org=tenant.org).values_list("send_id", flat=True))
    assert set(timeline) == {s["id"] for s in sends} and max(timeline.values()) == 1
    counted = SendDailyCount.objects.filter(org=tenant.org, status="queued").aggregate(n=Sum("count"))["n"]
    assert counted == len(sends)

    in_gap_latency = sorted(r["end"] - r["start"] for r in in_gap)
    write_figures("database_outage", {
        "requests": REQUESTS,
        "cut_seconds": round(events["restored"] - events["cut"], 1),
        "connections_reset_by_the_cut": events["reset_connections"],
        "responses": {kind: dict(Counter(r["status"] for r in results if r["kind"] == kind)) for kind in OK},
        "requests_entirely_in_the_gap": len(in_gap),
        "latency_in_gap_ms": {"p50": round(statistics.median(in_gap_latency) * 1000),
                              "max": round(in_gap_latency[-1] * 1000)},
        "first_success_after_restore_ms": round((first_ok_after - events["restored"]) * 1000)
        if first_ok_after else None,
        "retried_503s": len(retries),
        "sends_committed_although_answered_503": committed_before_503,
        "sends": len(sends),
        "quota_used": quota_used,
        "audit_entries_ok": sum(audited.values()),
    })
