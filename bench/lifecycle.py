"""Benchmark (issue #14, target 2): the message lifecycle — a backlog of queued sends drained through the
fake Twilio INCLUDING both signed status callbacks per message, with the README's production server and
worker commands on this machine; beside it a bare Celery task that only makes the same HTTP request.

    .venv/bin/python bench/lifecycle.py [--sends 10000] [--baseline 2000]
        [--worker-args "<celery worker flags>"] [--server-args "<gunicorn flags>"]

What it starts (all on 127.0.0.1, all stopped at the end):
  - PostgreSQL database $BENCH_LIFECYCLE_DATABASE_URL (default …/sendora_bench_lifecycle; dropped and re-created),
  - Redis $BENCH_LIFECYCLE_REDIS_URL as broker (default db 0) and the next db as cache (both flushed),
  - the fake Twilio (`python -m tests.fakes.twilio_server --auto-callbacks sent,delivered --callback-log …`):
    50 ms after each create it POSTs the two signed status callbacks to the service and logs how long
    each waited for its answer, from the moment it was due (queueing inside the fake counts),
  - gunicorn with the production flags (bench/common.py PRODUCTION_WEB_ARGS) serving the callbacks,
  - the Celery worker with the production flags (bench/common.py PRODUCTION_WORKER_ARGS), which also
    imports bench/tasks.py for the baseline task.

What it measures, back to back on the same processes:
  1. baseline: --baseline tasks that each only make the Twilio create request (same SDK, same pooled
     client, no StatusCallback, so no callbacks) → tasks/s;
  2. lifecycle: --sends queued sends (bulk-inserted, then their dispatch hand-off rows, which the worker's
     dispatcher turns into one dispatch task each: sms/services/handoff.py) until
     every one is `delivered` (claim → provider call → outcome → callback `sent` → callback `delivered`)
     → messages/s, and the CPU seconds per message of each process group (worker, web, fake Twilio,
     the PostgreSQL backends of the database, redis-server — shared with other users of the server);
  3. callbacks: from the fake's log, how many, their answers, and how long each waited (max, p99, > 1 s);
  4. exactly once: every send has one provider message, the fake created exactly --sends + --baseline
     messages, and each message got one answer per callback.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import (  # noqa: E402
    PRODUCTION_WEB_ARGS, PRODUCTION_WORKER_ARGS, PRODUCTION_WORKER_NICE, free_port, group_cpu, gunicorn_command,
    port_open, postgres_cpu, recreate_database, redis_cpu, stack_env, wait_until)
from bench.tasks import http_only_task  # noqa: E402

PY = sys.executable
DB_URL = os.environ.get("BENCH_LIFECYCLE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sendora_bench_lifecycle")
REDIS_URL = os.environ.get("BENCH_LIFECYCLE_REDIS_URL", "redis://127.0.0.1:6379/0")
FAKE_SID = "AC" + "e" * 32
FAKE_TOKEN = "bench_lifecycle_token_0123456789a"
FROM = "+15005550006"
COUNTER = "bench:lifecycle:baseline_done"
# the arguments of the baseline task (bench/tasks.py) beside each message's `to` and `body`
BASELINE = {"account_sid": FAKE_SID, "auth_token": FAKE_TOKEN, "from_number": FROM, "counter": COUNTER}


def stop(procs) -> None:
    for proc in reversed(procs):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def cpu_snapshot(groups: dict, db_name: str) -> dict:
    snap = {name: group_cpu(pid) for name, pid in groups.items()}
    snap["postgres"] = postgres_cpu(db_name)
    snap["redis"] = redis_cpu()
    snap["wall"] = time.monotonic()
    return snap


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=10_000)
    parser.add_argument("--baseline", type=int, default=2_000)
    parser.add_argument("--worker-args", default=" ".join(PRODUCTION_WORKER_ARGS))
    parser.add_argument("--server-args", default=" ".join(PRODUCTION_WEB_ARGS))
    parser.add_argument("--worker-nice", type=int, default=PRODUCTION_WORKER_NICE,
                        help="run the worker under `nice -n N` (0: not)")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    worker_args, server_args = args.worker_args.split(), args.server_args.split()

    db_name = DB_URL.rsplit("/", 1)[1]
    recreate_database(DB_URL)
    fake_port, web_port = free_port(), free_port()
    callback_log = Path(f"/tmp/sendora-bench-lifecycle-callbacks-{os.getpid()}.log")
    callback_log.unlink(missing_ok=True)
    env = stack_env(db_url=DB_URL, redis_url=REDIS_URL, twilio_url=f"http://127.0.0.1:{fake_port}",
                    SMS_PUBLIC_BASE_URL=f"http://127.0.0.1:{web_port}", PYTHONUNBUFFERED="1",
                    PYTHONPATH=str(ROOT),
                    # Connections outlive the run (production: 60 s): a PostgreSQL backend that exits mid-run
                    # takes its CPU seconds with it, and the PostgreSQL column would read low.
                    DB_CONN_MAX_AGE="3600")
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True)
    os.environ.update(env)
    import django

    django.setup()
    import redis
    from django.conf import settings
    from django.db import connection

    broker = redis.Redis.from_url(REDIS_URL)
    broker.flushdb()
    redis.Redis.from_url(settings.REDIS_URL).flushdb()

    from audit.services import Actor
    from orgs.services import org_create
    from sms.models import Provider, Send
    from sms.services import provider_account_set_twilio
    from sms.statuses import DispatchState

    org = org_create(name="Bench lifecycle", plan="enterprise", monthly_quota=100_000_000, send_rate=1_000_000)
    provider_account_set_twilio(org=org, account_sid=FAKE_SID, from_number=FROM, auth_token=FAKE_TOKEN,
                                actor=Actor.system("bench"))
    connection.close()

    procs: list[subprocess.Popen] = []
    logs = {name: open(f"/tmp/sendora-bench-lifecycle-{name}.log", "w")  # noqa: SIM115
            for name in ("fake", "web", "worker")}
    try:
        procs.append(subprocess.Popen(
            [PY, "-m", "tests.fakes.twilio_server", "--port", str(fake_port), "--account", f"{FAKE_SID}:{FAKE_TOKEN}",
             "--number", FROM, "--no-record", "--auto-callbacks", "sent,delivered", "--callback-log",
             str(callback_log)], cwd=ROOT, env=env, stdout=logs["fake"], stderr=subprocess.STDOUT,
            start_new_session=True))
        fake = procs[-1]
        procs.append(subprocess.Popen(gunicorn_command(PY, "sendora_sms.wsgi:application", web_port, server_args),
                                      cwd=ROOT, env=env, stdout=logs["web"], stderr=subprocess.STDOUT,
                                      start_new_session=True))
        web = procs[-1]
        nice = ["nice", "-n", str(args.worker_nice)] if args.worker_nice else []
        procs.append(subprocess.Popen(
            [*nice, PY, "-m", "celery", "-A", "sendora_sms", "worker", *worker_args, "--include", "bench.tasks",
             "-l", "warning"], cwd=ROOT, env=env, stdout=logs["worker"], stderr=subprocess.STDOUT,
            start_new_session=True))
        worker = procs[-1]
        wait_until(lambda: port_open(fake_port) and port_open(web_port), 60, "the fake Twilio and gunicorn")
        from sendora_sms.celery import app

        wait_until(lambda: bool(app.control.ping(timeout=2)), 120, "the Celery worker")
        groups = {"worker": worker.pid, "web": web.pid, "fake_twilio": fake.pid}

        # warm-up: every worker child imports and connects
        for i in range(32):
            http_only_task.delay(f"+1415555{i:04d}", "warm-up", **BASELINE)
        wait_until(lambda: int(broker.get(COUNTER) or 0) >= 32, 120, "warm-up")
        broker.set(COUNTER, 0)

        # 1. baseline
        n = args.baseline
        t0 = cpu_snapshot(groups, db_name)
        for i in range(n):
            http_only_task.delay(f"+1415{i % 10_000_000:07d}", f"baseline message {i}", **BASELINE)
        wait_until(lambda: int(broker.get(COUNTER) or 0) >= n, args.timeout, "baseline tasks")
        t1 = cpu_snapshot(groups, db_name)
        baseline = {"tasks": n, "seconds": t1["wall"] - t0["wall"], "per_s": n / (t1["wall"] - t0["wall"]),
                    "cpu_ms_per_task": {k: (t1[k] - t0[k]) * 1000 / n for k in t0 if k != "wall"}}
        print(f"baseline: {n} tasks in {baseline['seconds']:.1f} s = {baseline['per_s']:.1f}/s", flush=True)

        # 2. lifecycle
        from django.utils import timezone

        from sms.models import DispatchHandoff

        n = args.sends
        sends = [Send(org=org, to=f"+1628{i % 10_000_000:07d}", from_number=FROM, body=f"lifecycle message {i}",
                      status="queued", mode="prod", provider=Provider.TWILIO, dispatch_state=DispatchState.PENDING)
                 for i in range(n)]
        Send.objects.bulk_create(sends, batch_size=2000)
        connection.close()
        t0 = cpu_snapshot(groups, db_name)
        # Handed off as the API hands a send off (sms/services/handoff.py): a row each; the running worker's
        # dispatcher publishes their tasks, and its CPU is counted with the worker's.
        now = timezone.now()
        DispatchHandoff.objects.bulk_create([DispatchHandoff(send_id=s.pk, created_at=now) for s in sends],
                                            batch_size=2000)
        connection.close()
        delivered = Send.objects.filter(org=org, status="delivered")
        deadline = time.monotonic() + args.timeout
        last, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            count = delivered.count()
            if count >= n:
                break
            if count != last:
                last, last_change = count, time.monotonic()
            elif time.monotonic() - last_change > 60:  # e.g. callbacks lost to timeouts: stop waiting
                print(f"no progress for 60 s at {count} delivered: stopping", flush=True)
                break
            time.sleep(0.5)
        t1 = cpu_snapshot(groups, db_name)
        done = delivered.count()
        seconds = t1["wall"] - t0["wall"]
        lifecycle = {"sends": n, "delivered": done, "seconds": seconds, "per_s": done / seconds,
                     "cpu_ms_per_message": {k: (t1[k] - t0[k]) * 1000 / max(done, 1) for k in t0 if k != "wall"}}
        ours = ("worker", "web", "postgres", "redis")
        lifecycle["cpu_ms_per_message"]["ours_total"] = sum(lifecycle["cpu_ms_per_message"][k] for k in ours)
        print(f"lifecycle: {done}/{n} delivered in {seconds:.1f} s = {lifecycle['per_s']:.1f}/s", flush=True)
        time.sleep(2)  # the last callbacks' log lines
        distinct_ids = Send.objects.filter(org=org).exclude(provider_message_id="").values("provider_message_id") \
            .distinct().count()
        not_delivered = Send.objects.filter(org=org).exclude(status="delivered").count()
        connection.close()
    finally:
        stop(procs)
        for f in logs.values():
            f.close()

    fake_log = Path(f"/tmp/sendora-bench-lifecycle-fake.log").read_text()
    m = re.search(r"(\d+) messages created", fake_log)
    creates = int(m.group(1)) if m else None
    lines = [ln.split() for ln in callback_log.read_text().splitlines() if ln.strip()]
    lat = sorted(float(x[4]) for x in lines)
    answers: dict = {}
    per_sid: dict = {}
    for x in lines:
        answers[x[3]] = answers.get(x[3], 0) + 1
        per_sid[x[1]] = per_sid.get(x[1], 0) + 1
    queued = sorted(float(x[5]) for x in lines if len(x) > 5)  # of the wait: inside the fake, before it posted
    callbacks = {"count": len(lines), "answers": answers, "max_s": lat[-1] if lat else None,
                 "queued_in_fake_max_s": queued[-1] if queued else None,
                 "p99_s": lat[int(0.99 * (len(lat) - 1))] if lat else None,
                 "p50_s": lat[len(lat) // 2] if lat else None, "over_1s": sum(1 for v in lat if v > 1.0),
                 "messages_with_two": sum(1 for v in per_sid.values() if v == 2), "messages": len(per_sid)}
    exactly_once = {"fake_creates": creates, "expected_creates": args.sends + args.baseline + 32,
                    "distinct_provider_ids": distinct_ids, "not_delivered": not_delivered}
    result = {"command": {"server": server_args, "worker": worker_args, "sends": args.sends,
                          "baseline": args.baseline}, "cpus": os.cpu_count(), "baseline": baseline,
              "lifecycle": lifecycle, "callbacks": callbacks, "exactly_once": exactly_once}

    print(f"\ncommand: bench/lifecycle.py --sends {args.sends} --baseline {args.baseline} --server-args "
          f"'{' '.join(server_args)}' --worker-args '{' '.join(worker_args)}' --worker-nice {args.worker_nice}; "
          f"{os.cpu_count()} CPUs\n")
    print("| path | per s | CPU ms per message: worker | web | PostgreSQL | Redis* | ours total | fake Twilio |")
    print("|---|---|---|---|---|---|---|---|")
    b, c = baseline["cpu_ms_per_task"], lifecycle["cpu_ms_per_message"]
    print(f"| bare task: the Twilio create only | {baseline['per_s']:.1f} | {b['worker']:.2f} | {b['web']:.2f} | "
          f"{b['postgres']:.2f} | {b['redis']:.2f} | {b['worker'] + b['web'] + b['postgres'] + b['redis']:.2f} | "
          f"{b['fake_twilio']:.2f} |")
    print(f"| lifecycle: queued → delivered (2 callbacks) | **{lifecycle['per_s']:.1f}** | {c['worker']:.2f} | "
          f"{c['web']:.2f} | {c['postgres']:.2f} | {c['redis']:.2f} | **{c['ours_total']:.2f}** | "
          f"{c['fake_twilio']:.2f} |")
    print("\n*redis-server is shared with other users of this machine: its figure is an upper bound.")
    print(f"\ncallbacks: {callbacks['count']:,} ({callbacks['answers']}), waited p50 {callbacks['p50_s']:.3f} s, "
          f"p99 {callbacks['p99_s']:.3f} s, max {callbacks['max_s']:.3f} s (of which inside the fake at most "
          f"{callbacks['queued_in_fake_max_s'] or 0:.3f} s), {callbacks['over_1s']} over 1 s; "
          f"{callbacks['messages_with_two']:,} of {callbacks['messages']:,} messages got exactly two")
    print(f"exactly once: fake created {creates} messages (expected {exactly_once['expected_creates']}), "
          f"{distinct_ids:,} distinct provider ids for {args.sends:,} sends, {not_delivered} not delivered")
    print("\nJSON:", json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
