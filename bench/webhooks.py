"""Benchmark: tenant webhook delivery throughput through a real Celery worker beside a bare task making the same
HTTP POST, one run (issue #15: target ≥ 0.6 × the bare task).

    .venv/bin/python bench/webhooks.py [--messages 2000] [--concurrency 8]

What it starts (all on 127.0.0.1, all stopped at the end):
  - PostgreSQL database `sendora_bench_webhooks` (dropped and re-created; $BENCH_WEBHOOKS_DATABASE_URL),
  - Redis db 12 as broker and cache ($BENCH_WEBHOOKS_REDIS_URL; flushed at start),
  - a receiver process answering 200 at once (a ThreadingHTTPServer),
  - one Celery worker consuming every queue (the production command: no -Q), which also imports this module
    for the baseline task.

Measured on the same worker and receiver in --rounds alternating rounds (A B, B A, …), pooled:
  1. baseline: N tasks that each POST the same JSON body to the receiver (requests, one pooled session) and
     INCR a Redis counter — the floor for "one HTTP POST per task";
  2. deliveries: N webhook messages (one event × one endpoint each), one `webhook_deliver_task` each, until
     every message is `delivered` — claim, SSRF check, secret decryption, Standard Webhooks signature, the
     POST, the attempt log and the outcome update.
Prints messages/s for both and the ratio as Markdown and JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import free_port, port_open, recreate_database, stack_env, wait_until  # noqa: E402

PY = sys.executable
DB_URL = os.environ.get("BENCH_WEBHOOKS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sendora_bench_webhooks")
REDIS_URL = os.environ.get("BENCH_WEBHOOKS_REDIS_URL", "redis://127.0.0.1:6379/12")
COUNTER = "bench:webhooks:baseline_done"
RECEIVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200); self.send_header("content-length", "2"); self.end_headers(); self.wfile.write(b"ok")
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""

try:
    from celery import shared_task

    _session = None

    @shared_task(name="bench.webhooks.post_only_task", ignore_result=True)
    def post_only_task(url: str, body: str) -> None:
        """Only the HTTP POST a delivery makes (same body size, a pooled session), then count it."""
        import redis
        import requests
        from django.conf import settings

        global _session
        if _session is None:
            _session = requests.Session()
        _session.post(url, data=body.encode(), headers={"content-type": "application/json"}, timeout=15,
                      allow_redirects=False)
        redis.Redis.from_url(settings.CELERY_BROKER_URL).incr(COUNTER)
except ImportError:  # pragma: no cover
    pass



def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per leg (pooled)")
    args = parser.parse_args()

    recreate_database(DB_URL)
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    env = stack_env(db_url=DB_URL, redis_url=REDIS_URL, twilio_url="http://127.0.0.1:9", PYTHONUNBUFFERED="1",
                    WEBHOOKS_ALLOW_HTTP="true", WEBHOOKS_ALLOW_PRIVATE_ADDRESSES="true",
                    WEBHOOKS_ENDPOINT_CONCURRENCY=str(args.concurrency))
    os.environ.update(env)
    import django

    django.setup()
    import redis
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    broker = redis.Redis.from_url(REDIS_URL)
    broker.flushdb()
    procs: list[subprocess.Popen] = []
    try:
        procs.append(subprocess.Popen([PY, "-c", RECEIVER, str(port)], env=env, start_new_session=True))
        procs.append(subprocess.Popen(
            [PY, "-m", "celery", "-A", "sendora_sms", "worker", "-c", str(args.concurrency), "--include",
             "bench.webhooks", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True))
        wait_until(lambda: port_open(port), 10, "the receiver")
        time.sleep(3)

        from django.utils import timezone

        from orgs.models import Org
        from sms.models import Event
        from sms.tasks import webhook_deliver_task
        from sms.tenant_webhooks import services
        from sms.tenant_webhooks.models import WebhookMessage

        org = Org.objects.create(name="Bench webhooks", plan="enterprise")
        endpoint = services.webhook_endpoint_create(org=org, mode="prod", url=url).endpoint
        n = args.messages
        sample = {"id": "0" * 36, "type": "sms.delivered", "org_id": str(org.pk), "created_at": "2026-01-01T00:00:00Z",
                  "data": {"id": "0" * 36, "to": "+14155550100", "status": "delivered", "body": "x" * 60}}
        body = json.dumps(sample)

        for i in range(args.concurrency * 2):  # warm-up
            post_only_task.delay(url, body)
        wait_until(lambda: int(broker.get(COUNTER) or 0) >= args.concurrency * 2, 60, "warm-up")

        # Every message's rows exist before timing starts (the outbox wrote them when the events happened).
        now = timezone.now()
        events = [Event(org=org, type="sms.delivered", data=sample["data"]) for _ in range(n)]
        Event.objects.bulk_create(events, batch_size=1000)
        messages = [WebhookMessage(endpoint=endpoint, event=e, event_id_public=e.pk, event_type=e.type,
                                   payload={**sample, "id": str(e.pk)}, next_attempt_at=now) for e in events]
        WebhookMessage.objects.bulk_create(messages, batch_size=1000)
        pending = WebhookMessage.objects.filter(endpoint=endpoint, status="pending")

        def baseline_leg(count: int) -> float:
            broker.set(COUNTER, 0)
            started = time.perf_counter()
            for _ in range(count):
                post_only_task.delay(url, body)
            wait_until(lambda: int(broker.get(COUNTER) or 0) >= count, 600, "baseline tasks", interval=0.05)
            return time.perf_counter() - started

        def delivery_leg(batch: list) -> float:
            started = time.perf_counter()
            for m in batch:
                webhook_deliver_task.delay(str(m.pk))
            # polled as seldom as the baseline's counter: the check itself must not load the database
            wait_until(lambda: not pending.filter(pk__in=[m.pk for m in batch[-50:]]).exists()
                       and not pending.filter(pk__in=[m.pk for m in batch]).exists(), 600, "deliveries",
                       interval=0.05)
            return time.perf_counter() - started

        # Alternating rounds (A B, B A, …), pooled: a change of load on the machine falls on both legs alike.
        per_round = n // args.rounds
        times = {"baseline": 0.0, "deliveries": 0.0}
        for r in range(args.rounds):
            batch = messages[r * per_round:(r + 1) * per_round]
            legs = [("baseline", lambda: baseline_leg(per_round)), ("deliveries", lambda: delivery_leg(batch))]
            for name, leg in (legs if r % 2 == 0 else legs[::-1]):
                seconds = leg()
                times[name] += seconds
                print(f"round {r + 1} {name}: {per_round / seconds:.1f}/s", flush=True)
        baseline = per_round * args.rounds / times["baseline"]
        delivered = per_round * args.rounds / times["deliveries"]
        n = per_round * args.rounds
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)

    result = {"messages": n, "rounds": args.rounds, "worker_concurrency": args.concurrency, "baseline_per_s": round(baseline, 1),
              "deliveries_per_s": round(delivered, 1), "ratio": round(delivered / baseline, 3)}
    print("| path | messages/s |\n|---|---|")
    print(f"| baseline task: the same HTTP POST only | {baseline:.1f} |")
    print(f"| webhook_deliver_task: claim, sign, POST, attempt log | {delivered:.1f} |")
    print(f"| ratio deliveries / baseline (target ≥ 0.6) | {delivered / baseline:.2f} |")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
