"""In-process CPU profile of dispatch (issue #14, target 2): `send_dispatch` called directly in this process,
the fake Twilio answering over real HTTP in another — the worker's own CPU per message, free of Celery and of
the machine's noise.

    BENCH_DATABASE_URL=… BENCH_REDIS_URL=… .venv/bin/python bench/dispatch_cpu.py [--n 1000] [--profile]

Uses bench/send_api.py's database (migrated by it; a fresh org is created here) and Redis. Each message is a
queued send (bulk-inserted as bench/lifecycle.py does), then dispatched: claim → the Twilio create → outcome.
Prints CPU ms per dispatch of this process (time.process_time); --profile prints cProfile's top functions.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import free_port, port_open, stack_env, wait_until  # noqa: E402
from bench.send_cpu import DB_URL, REDIS_URL  # noqa: E402 — the same database and Redis as send_cpu.py


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    from bench.send_api import FAKE_SID, FAKE_TOKEN, FROM

    port = free_port()
    fake = subprocess.Popen([sys.executable, "-m", "tests.fakes.twilio_server", "--port", str(port), "--no-record",
                             "--account", f"{FAKE_SID}:{FAKE_TOKEN}", "--number", FROM], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: port_open(port), 20, "the fake Twilio")
        os.environ.update(stack_env(db_url=DB_URL, redis_url=REDIS_URL, twilio_url=f"http://127.0.0.1:{port}",
                                    SMS_PUBLIC_BASE_URL="http://127.0.0.1"))
        return _run(args)
    finally:
        fake.terminate()
        fake.wait()


def _run(args) -> int:
    import django

    django.setup()
    from bench.send_api import FROM, make_org
    from sms.models import Provider, Send
    from sms.services.dispatch import DispatchOutcome, send_dispatch
    from sms.statuses import DispatchState

    org, _ = make_org(f"Dispatch CPU {time.time()}")
    sends = [Send(org=org, to=f"+1628{i % 10_000_000:07d}", from_number=FROM, body=f"dispatch {i}", status="queued",
                  mode="prod", provider=Provider.TWILIO, dispatch_state=DispatchState.PENDING)
             for i in range(args.n + 50)]  # as bench/lifecycle.py queues them
    Send.objects.bulk_create(sends, batch_size=2000)
    ids = [s.pk for s in sends]
    for send_id in ids[:50]:  # warm-up: connections, caches, the SDK client
        send_dispatch(send_id=send_id)
    prof = cProfile.Profile(time.process_time) if args.profile else None
    c0, w0 = time.process_time(), time.perf_counter()
    if prof:
        prof.enable()
    outcomes = [send_dispatch(send_id=send_id).outcome for send_id in ids[50:]]
    if prof:
        prof.disable()
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    accepted = outcomes.count(DispatchOutcome.ACCEPTED)
    print(f"{args.n} dispatches ({accepted} accepted): {cpu * 1000 / args.n:.3f} ms CPU each (this process), "
          f"{wall * 1000 / args.n:.3f} ms wall")
    if prof:
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(60)
        print(s.getvalue())
    return 0 if accepted == args.n else 1


if __name__ == "__main__":
    raise SystemExit(main())
