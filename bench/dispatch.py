"""Benchmark: dispatch throughput through a real Celery worker beside a bare-HTTP baseline task, one run.

    .venv/bin/python bench/dispatch.py [--sends 2000] [--concurrency 8] [--pool prefork|threads]

What it starts (all on 127.0.0.1, all stopped at the end):
  - PostgreSQL database `sendora_bench_dispatch` (dropped and re-created; $BENCH_DISPATCH_DATABASE_URL),
  - Redis db 13 as broker ($BENCH_DISPATCH_REDIS_URL; flushed at start),
  - the fake Twilio as its own process (`python -m tests.fakes.twilio_server --no-record`),
  - one Celery worker consuming every queue, which also imports bench/tasks.py for the baseline task.

What it measures, back to back on the same worker and fake:
  1. baseline: N tasks that each make only the Twilio create request (same SDK, same pooled HTTP
     client, same fake) and INCR a Redis counter — the floor for "one HTTP call per task";
  2. dispatch: N queued sends (inserted in bulk, then one `send_dispatch_task` each) until every one
     carries its provider message id — claim CAS + timeline + counters, decrypt, the provider call,
     and the outcome transaction. ("sent" in our vocabulary needs Twilio's callback; the accepted
     state is the last one the worker itself writes, see docs/architecture.md.)
Prints sends/s for both and the ratio dispatch/baseline as Markdown and JSON.
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
from bench.tasks import http_only_task  # noqa: E402
PY = sys.executable
DB_URL = os.environ.get("BENCH_DISPATCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sendora_bench_dispatch")
REDIS_URL = os.environ.get("BENCH_DISPATCH_REDIS_URL", "redis://127.0.0.1:6379/13")
FAKE_SID = "AC" + "d" * 32
FAKE_TOKEN = "bench_dispatch_token_0123456789ab"
FROM = "+15005550006"
COUNTER = "bench:dispatch:baseline_done"
# the arguments of the baseline task (bench/tasks.py) beside each message's `to` and `body`
BASELINE = {"account_sid": FAKE_SID, "auth_token": FAKE_TOKEN, "from_number": FROM, "counter": COUNTER}


def env_for(twilio_url: str) -> dict:
    return stack_env(db_url=DB_URL, redis_url=REDIS_URL, twilio_url=twilio_url, SMS_PUBLIC_BASE_URL="",
                     PYTHONUNBUFFERED="1")



def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--pool", default="prefork", choices=["prefork", "threads"])
    args = parser.parse_args()

    recreate_database(DB_URL)
    port = free_port()
    twilio_url = f"http://127.0.0.1:{port}"
    env = env_for(twilio_url)
    os.environ.update(env)
    import django

    django.setup()
    import redis
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    broker = redis.Redis.from_url(REDIS_URL)
    broker.flushdb()

    procs: list[subprocess.Popen] = []
    log = open(ROOT / "var" / "bench-dispatch-worker.log", "w") if (ROOT / "var").exists() else subprocess.DEVNULL
    try:
        procs.append(subprocess.Popen(
            [PY, "-m", "tests.fakes.twilio_server", "--port", str(port), "--account", f"{FAKE_SID}:{FAKE_TOKEN}",
             "--number", FROM, "--no-record"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True))
        from sendora_sms.celery import QueueNames

        procs.append(subprocess.Popen(
            [PY, "-m", "celery", "-A", "sendora_sms", "worker", "-Q", ",".join(QueueNames.all()), "-c",
             str(args.concurrency), "--pool", args.pool, "--include", "bench.tasks", "--without-gossip",
             "--without-mingle", "--without-heartbeat", "-l", "warning"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        wait_until(lambda: port_open(port), 10, "the fake Twilio")
        time.sleep(3)  # worker boot

        from sms import crypto
        from sms.models import Provider, ProviderAccount, Send
        from orgs.models import Org
        from sms.tasks import send_dispatch_task

        org = Org.objects.create(name="Bench dispatch", plan="enterprise")
        ProviderAccount.objects.create(org=org, provider=Provider.TWILIO, account_sid=FAKE_SID, from_number=FROM,
                                       auth_token_encrypted=crypto.encrypt(FAKE_TOKEN, org_id=org.pk))
        n = args.sends

        # Warm-up: both paths once, so imports and pooled connections exist in every child.
        for i in range(args.concurrency * 2):
            http_only_task.delay(f"+1415550{i:04d}", "warm-up", **BASELINE)
        wait_until(lambda: int(broker.get(COUNTER) or 0) >= args.concurrency * 2, 60, "warm-up")
        broker.set(COUNTER, 0)

        # 1. baseline
        started = time.perf_counter()
        for i in range(n):
            http_only_task.delay(f"+1415{i % 10_000_000:07d}", f"baseline message {i}", **BASELINE)
        wait_until(lambda: int(broker.get(COUNTER) or 0) >= n, 600, "baseline tasks")
        baseline = n / (time.perf_counter() - started)

        # 2. dispatch
        sends = [Send(org=org, to=f"+1628{i % 10_000_000:07d}", from_number=FROM, body=f"dispatch message {i}",
                      status="queued", mode="prod", provider="twilio") for i in range(n)]
        Send.objects.bulk_create(sends, batch_size=1000)
        ids = [str(s.pk) for s in sends]
        started = time.perf_counter()
        for send_id in ids:
            send_dispatch_task.delay(send_id)
        wait_until(lambda: Send.objects.filter(org=org).exclude(provider_message_id="").count() >= n, 600,
                   "dispatched sends")
        dispatch = n / (time.perf_counter() - started)
        failed = Send.objects.filter(org=org).exclude(status="sending").count()
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)

    result = {"sends": n, "worker_concurrency": args.concurrency, "pool": args.pool,
              "baseline_per_s": round(baseline, 1), "dispatch_per_s": round(dispatch, 1),
              "ratio": round(dispatch / baseline, 3), "not_accepted": failed}
    print("| path | sends/s |\n|---|---|")
    print(f"| baseline task: Twilio create only | {baseline:.1f} |")
    print(f"| send_dispatch_task: queued → accepted | {dispatch:.1f} |")
    print(f"| ratio dispatch / baseline | {dispatch / baseline:.2f} |")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
