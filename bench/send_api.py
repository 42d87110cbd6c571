"""Benchmark: POST /api/v1/orgs/{org}/sms/send beside the speed floors, in one run (issue #14).

    .venv/bin/python bench/send_api.py --ratio-only [--rounds 4] [--duration 5]   # the floors section only
    .venv/bin/python bench/send_api.py [--duration 6] [--history 1000000] [--quick] # everything

The reference is the Flask floor (bench/floors/floor_flask.py: one JSON POST → one INSERT → JSON, copied
from the shared speed floors); the DRF APIView floor (bench/floors/floor_django.py, DJFLOOR_DRF=1) is
printed beside it to show the framework's own share. The service AND both floors are served with the
same gunicorn command — the README's production one (bench/common.py PRODUCTION_WEB_ARGS; --server-args
to try another) — and loaded with the same client, wrk (2 threads, keep-alive, a distinct JSON body per
request: bench/wrk_post.lua), in alternating rounds (floor_flask, floor_drf, send / send, floor_drf,
floor_flask / …) at c=16 and c=64, pooled. Server CPU per request (the gunicorn process group) and
PostgreSQL CPU per request (the backends of the target's database, from /proc) are printed for each.

What it starts (all on 127.0.0.1, all stopped at the end):
  - PostgreSQL database `sendora_bench` (dropped and re-created; $BENCH_DATABASE_URL to move it) and the
    floors' database `<that>_floor` ($BENCH_FLOOR_DB) with its floor_rows table,
  - Redis db 14 as broker + the next db as rate-limit cache ($BENCH_REDIS_URL; flushed at start),
  - the fake Twilio (`python -m tests.fakes.twilio_server`), so dispatch makes real HTTP calls,
  - a Celery worker (threads pool) consuming every queue, its sms-send consumer paused for the API legs
    (Celery remote control `cancel_consumer`): accepted sends wait in Redis, so the legs measure the web
    tier's own work as the floors do,
  - gunicorn for the service, and for each floor.

After the floors section (unless --ratio-only):
  2. send latency for an org with an empty history (B) against an org with --history past sends (C;
     default 1,000,000, with their timeline rows and day counters), in alternating rounds: with one
     client (target: within 20 %), then with 16 clients (python client);
  3. GET …/sms/stats p50/p95 on both orgs (target p95 < 50 ms at 1,000,000 sends), and GET …/sms/sends:
     the first page and a page from the middle of the history (cursor pagination);
  4. (with the worker) send vs floor once more with the sms-send consumer resumed, then the rate at
     which the worker drains the queued sends for --drain-seconds.
Results are printed as Markdown tables and JSON.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import (  # noqa: E402
    PRODUCTION_WEB_ARGS, analyze_database, free_port, group_cpu, gunicorn_command, postgres_cpu, recreate_database,
    stack_env)
PY = sys.executable
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sendora_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
FAKE_SID = "AC" + "b" * 32
FAKE_TOKEN = "bench_auth_token_0123456789abcdef"
FROM = "+15005550006"
# The floors' own database (bench/floors/: one INSERT per request into floor_rows).
FLOOR_DB = os.environ.get("BENCH_FLOOR_DB", DB_URL.rsplit("/", 1)[1] + "_floor")


def base_env(twilio_url: str) -> dict:
    return stack_env(db_url=DB_URL, redis_url=REDIS_URL, twilio_url=twilio_url, SENDORA_BENCH_ENDPOINTS="1",
                     PYTHONPATH=str(ROOT), WEBHOOKS_ALLOW_HTTP="true", WEBHOOKS_ALLOW_PRIVATE_ADDRESSES="true")


# ------------------------------------------------------------------------------------------------
# Setup
# ------------------------------------------------------------------------------------------------



def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def django_setup(env: dict) -> None:
    os.environ.update(env)
    import django

    django.setup()


def make_org(name: str):
    """An enterprise org with a huge quota and rate, Twilio credentials (the fake) and a prod key."""
    from audit.services import Actor
    from orgs.models import KeyMode, Role
    from orgs.services import api_key_create, org_create
    from sms.services import provider_account_set_twilio

    org = org_create(name=name, plan="enterprise", monthly_quota=100_000_000, send_rate=1_000_000)
    # The load sends thousands to each +1555 exchange: the pumping defence (sms/pumping.py) would refuse them.
    # Its Redis check still runs on every send (one round trip), so the figure includes its cost.
    org.pumping_limit = 100_000_000
    org.save(update_fields=["pumping_limit"])
    provider_account_set_twilio(org=org, account_sid=FAKE_SID, from_number=FROM, auth_token=FAKE_TOKEN,
                                actor=Actor.system("bench"))
    _, raw = api_key_create(org=org, role=Role.MEMBER, mode=KeyMode.PROD)
    return org, raw


def bulk_load_history(org, n: int) -> float:
    """n past sends (+ one timeline row each + their day counters) for `org`, via generate_series."""
    from django.db import connection

    t0 = time.monotonic()
    with connection.cursor() as cur:
        cur.execute("""
            INSERT INTO sms_send (id, org_id, "to", from_number, body, original_body, category, status, suppressed_reason,
                segments, encoding, metadata, provider, provider_message_id, error_code, error_message, mode,
                request_fingerprint, dedupe_key, attempts, review_reason, created_at, updated_at, sent_at,
                delivered_at)
            SELECT gen_random_uuid(), %(org)s, '+1555' || lpad((i %% 9000 + 1000)::text, 7, '0'), %(from)s,
                'History message ' || i, '', CASE WHEN i %% 5 = 0 THEN 'marketing' ELSE 'transactional' END,
                'delivered', '', 1, 'GSM-7', '{}'::jsonb, 'twilio', 'SM' || md5(i::text), '', '', 'prod', '',
                encode(sha256(convert_to('+1555' || lpad((i %% 9000 + 1000)::text, 7, '0') || '|History message '
                    || i, 'UTF8')), 'hex'),
                1, '', now() - make_interval(secs => 61 + i * 5), now() - make_interval(secs => 61 + i * 5),
                now() - make_interval(secs => 60 + i * 5), now() - make_interval(secs => 55 + i * 5)
            FROM generate_series(1, %(n)s) AS i
        """, {"org": org.pk, "from": FROM, "n": n})
        cur.execute("""
            INSERT INTO sms_sendstatuschange (send_id, status, source, detail, created_at)
            SELECT id, 'delivered', 'callback', '{}'::jsonb, delivered_at FROM sms_send
            WHERE org_id = %(org)s AND status = 'delivered'
        """, {"org": org.pk})
        cur.execute("""
            INSERT INTO sms_senddailycount (org_id, day, category, status, count, segments)
            SELECT org_id, (created_at AT TIME ZONE 'UTC')::date, category, status, count(*), sum(segments)
            FROM sms_send WHERE org_id = %(org)s AND status = 'delivered' GROUP BY 1, 2, 3, 4
            ON CONFLICT (org_id, day, category, status, shard, mode) DO UPDATE
            SET count = sms_senddailycount.count + excluded.count,
                segments = sms_senddailycount.segments + excluded.segments
        """, {"org": org.pk})
        cur.execute("ANALYZE sms_send")
        cur.execute("ANALYZE sms_sendstatuschange")
        cur.execute("ANALYZE sms_senddailycount")
    connection.close()
    return time.monotonic() - t0


def middle_cursor(org) -> str:
    """The API's cursor pointing at the middle of the org's send history (newest first)."""
    from sendora_sms.api.pagination import cursor_encode
    from sms.models import Send

    n = Send.objects.filter(org=org).count()
    row = Send.objects.filter(org=org).order_by("-created_at", "-pk").values_list("created_at", "pk")[n // 2]
    return cursor_encode(*row)


# ------------------------------------------------------------------------------------------------
# Processes
# ------------------------------------------------------------------------------------------------


class Procs:
    def __init__(self):
        self.procs: list[subprocess.Popen] = []

    def start(self, args, env, name, nice: int = 0):
        log = open(f"/tmp/sendora-bench-{name}.log", "w")  # noqa: SIM115 — kept open for the child
        proc = subprocess.Popen((["nice", "-n", str(nice)] if nice else []) + args, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


class Worker:
    """The Celery worker's sms-send consumer, paused and resumed through Celery's remote control
    (`cancel_consumer` / `add_consumer`: the worker process stays up, sms-send tasks wait in Redis)."""

    def __init__(self, absent: bool):
        self.absent = absent

    def _control(self, command: str) -> None:
        if self.absent:
            return
        from sendora_sms.celery import QueueNames, app

        for _ in range(6):  # a worker still booting on a busy machine answers late
            replies = getattr(app.control, command)(QueueNames.SEND, reply=True, timeout=5)
            if replies:
                return
        raise SystemExit(f"the Celery worker did not answer {command}")

    def pause(self) -> None:
        self._control("cancel_consumer")

    def resume(self) -> None:
        self._control("add_consumer")

    def drain(self, *, orgs, seconds: float) -> dict:
        """Watch queued sends leave `queued` for `seconds`; the rate at which the worker takes them."""
        from sms.models import Send
        from sms.statuses import SendStatus

        queued = Send.objects.filter(org__in=orgs, status=SendStatus.QUEUED)
        before, t0 = queued.count(), time.monotonic()
        while time.monotonic() - t0 < seconds and queued.exists():
            time.sleep(0.5)
        elapsed, left = time.monotonic() - t0, queued.count()
        return {"queued_at_start": before, "sends": before - left, "seconds": elapsed,
                "per_s": (before - left) / elapsed, "left": left}


def wait_http(port: int, path: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"nothing answered on :{port}{path} within {timeout}s")


# ------------------------------------------------------------------------------------------------
# The floors (bench/floors/, copied from the shared speed floors) and wrk
# ------------------------------------------------------------------------------------------------


def recreate_floor_database() -> None:
    import psycopg

    admin_url = DB_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{FLOOR_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{FLOOR_DB}"')
    with psycopg.connect(DB_URL.rsplit("/", 1)[0] + "/" + FLOOR_DB, autocommit=True) as conn:
        conn.execute("CREATE TABLE floor_rows (id uuid primary key, body text, created_at timestamptz default now())")


def wrk_leg(port: int, path: str, *, key: str | None, kind: str, concurrency: int, duration: float, tag: str,
            pgid: int | None = None, pg_db: str | None = None) -> dict:
    """One wrk run (2 threads, 1 for one connection; `concurrency` keep-alive connections, distinct JSON bodies: bench/wrk_post.lua).
    With pgid/pg_db, the CPU seconds the server's process group and its PostgreSQL backends spent."""
    cmd = ["wrk", "-t", str(min(2, concurrency)), "-c", str(concurrency), "-d", f"{duration:g}s", "--timeout", "10s",
           "-s", str(ROOT / "bench" / "wrk_post.lua")]
    if key:
        cmd += ["-H", f"x-api-key: {key}"]
    cmd.append(f"http://127.0.0.1:{port}{path}")
    cpu0 = group_cpu(pgid) if pgid else 0.0
    pg0 = postgres_cpu(pg_db) if pg_db else 0.0
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "BENCH_KIND": kind, "BENCH_TAG": tag},
                         check=True).stdout
    cpu = (group_cpu(pgid) - cpu0) if pgid else 0.0
    pg = (postgres_cpu(pg_db) - pg0) if pg_db else 0.0
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    r = json.loads(line[len("WRKJSON "):])
    ok = r["requests"] - r["bad"]
    return {"requests": r["requests"], "ok": ok, "errors": r["bad"], "elapsed": r["duration_us"] / 1e6,
            "p50_ms": r["p50_us"] / 1000, "p99_ms": r["p99_us"] / 1000, "mean_ms": r["mean_us"] / 1000,
            "cpu_s": cpu, "pg_cpu_s": pg}


def wrk_pool(legs: list[dict], concurrency: int) -> dict:
    ok = sum(x["ok"] for x in legs)
    elapsed = sum(x["elapsed"] for x in legs)
    weights = [x["requests"] for x in legs]
    wsum = sum(weights) or 1
    cpu, pg = sum(x["cpu_s"] for x in legs), sum(x["pg_cpu_s"] for x in legs)
    return {"concurrency": concurrency, "ok": ok, "errors": sum(x["errors"] for x in legs), "rps": ok / elapsed,
            # wrk reports percentiles per run; pooled as the request-weighted mean of the rounds' percentiles,
            # and the worst round's p99 beside it
            "p50_ms": sum(x["p50_ms"] * w for x, w in zip(legs, weights)) / wsum,
            "p99_ms": sum(x["p99_ms"] * w for x, w in zip(legs, weights)) / wsum,
            "p99_worst_ms": max(x["p99_ms"] for x in legs),
            "cpu_ms_per_req": cpu * 1000 / ok if ok else float("nan"),
            "pg_cpu_ms_per_req": pg * 1000 / ok if ok else float("nan"),
            "rounds": [x["ok"] / x["elapsed"] for x in legs]}


class Floors:
    """floor_flask (the reference) and floor_django with DJFLOOR_DRF=1, each under the same gunicorn
    command as the service."""

    def __init__(self, procs, server_args: list[str]):
        env = dict(os.environ)
        for name in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE"):
            env.pop(name, None)
        env.update({"FLOOR_DSN": f"dbname={FLOOR_DB} user=postgres host=127.0.0.1", "DJ_DB": FLOOR_DB})
        self.flask_port, self.drf_port = free_port(), free_port()
        floors = str(ROOT / "bench" / "floors")
        self.flask = procs.start(gunicorn_command(PY, "floor_flask:app", self.flask_port, server_args, floors),
                                 env, "floor-flask")
        self.drf = procs.start(gunicorn_command(PY, "floor_django:application", self.drf_port, server_args, floors),
                               {**env, "DJFLOOR_DRF": "1"}, "floor-drf")

    def wait(self):
        for port in (self.flask_port, self.drf_port):
            wait_http(port, "/insert")


def floors_section(*, web_port: int, web_pgid: int, floors: Floors, send_path: str, key: str, args) -> list[dict]:
    """POST /sms/send beside the Flask floor (the reference) and the DRF APIView floor, at c=16 and c=64,
    in alternating rounds (floor, drf, send / send, drf, floor / …), pooled."""
    web_db = DB_URL.rsplit("/", 1)[1]
    legs = {
        "floor_flask": (floors.flask_port, "/insert", None, "floor", floors.flask.pid, FLOOR_DB),
        "floor_drf": (floors.drf_port, "/insert", None, "floor", floors.drf.pid, FLOOR_DB),
        "send": (web_port, send_path, key, "send", web_pgid, web_db),
    }
    for name, (port, path, k, kind, pgid, db) in legs.items():  # warm-up: every worker, connection, code path
        wrk_leg(port, path, key=k, kind=kind, concurrency=16, duration=2, tag=f"warm-{name}")
    analyze_database(DB_URL)  # what production's autovacuum would have done by now (bench/common.py)
    out = []
    for c in (16, 64):
        runs: dict = {name: [] for name in legs}
        order = list(legs)
        for r in range(args.rounds):
            for name in (order if r % 2 == 0 else order[::-1]):
                port, path, k, kind, pgid, db = legs[name]
                runs[name].append(wrk_leg(port, path, key=k, kind=kind, concurrency=c, duration=args.duration,
                                          tag=f"api-{name}-c{c}-r{r}", pgid=pgid, pg_db=db))
        pooled = {name: wrk_pool(ms, c) for name, ms in runs.items()}
        row = {"concurrency": c, **pooled,
               "ratio": pooled["send"]["rps"] / pooled["floor_flask"]["rps"],
               "drf_ratio": pooled["floor_drf"]["rps"] / pooled["floor_flask"]["rps"],
               "round_ratios": [s_ / f_ for s_, f_ in zip(pooled["send"]["rounds"], pooled["floor_flask"]["rounds"])]}
        out.append(row)
        print(f"c={c}: send {row['send']['rps']:.0f}/s p99 {row['send']['p99_ms']:.1f} ms "
              f"({row['send']['cpu_ms_per_req']:.2f} ms CPU) | floor_flask {row['floor_flask']['rps']:.0f}/s "
              f"({row['floor_flask']['cpu_ms_per_req']:.2f} ms CPU) | floor_drf {row['floor_drf']['rps']:.0f}/s | "
              f"ratio {row['ratio']:.2f} (drf {row['drf_ratio']:.2f})", flush=True)
    return out


def print_floors(rows: list[dict], args) -> None:
    print(f"\n## POST /sms/send vs the floors (gunicorn {' '.join(args.server_args)}; wrk -t2; {args.rounds} "
          f"alternating rounds of {args.duration:g} s per leg, pooled)\n")
    print("| c | target | req/s | ratio to floor_flask | p50 ms | p99 ms (worst round) | server CPU ms/req | "
          "PostgreSQL CPU ms/req | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        for name in ("floor_flask", "floor_drf", "send"):
            m = row[name]
            ratio = m["rps"] / row["floor_flask"]["rps"]
            print(f"| {row['concurrency']} | {name} | {m['rps']:.0f} | {'**' if name == 'send' else ''}{ratio:.2f}"
                  f"{'**' if name == 'send' else ''} | {m['p50_ms']:.1f} | {m['p99_ms']:.1f} ({m['p99_worst_ms']:.1f}) | "
                  f"{m['cpu_ms_per_req']:.2f} | {m['pg_cpu_ms_per_req']:.2f} | {m['errors']} |")
        print(f"| {row['concurrency']} | send/floor_flask per round | "
              f"{', '.join(f'{x:.2f}' for x in row['round_ratios'])} | | | | | | |")


# ------------------------------------------------------------------------------------------------
# Load generator: closed loop, one keep-alive connection per thread
# ------------------------------------------------------------------------------------------------


def load(port: int, method: str, path: str | list, key: str | list, *, concurrency: int, duration: float,
         body_fn=None, expect: int = 202) -> dict:
    """path/key may be lists: thread t uses path[t % n] with key[t % n] (several orgs at once)."""
    latencies: list[float] = []
    ok = errors = 0
    lock = threading.Lock()
    start_evt = threading.Event()
    stop_at = [0.0]

    def worker(tid: int):
        nonlocal ok, errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        my_path = path[tid % len(path)] if isinstance(path, list) else path
        headers = {"x-api-key": key[tid % len(key)] if isinstance(key, list) else key,
                   "Content-Type": "application/json"}
        mine, mine_ok, mine_err, i = [], 0, 0, 0
        start_evt.wait()
        while time.monotonic() < stop_at[0]:
            payload = json.dumps(body_fn(tid, i)) if body_fn else None
            i += 1
            t0 = time.perf_counter()
            try:
                conn.request(method, my_path, body=payload, headers=headers)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status = 0
            mine.append(time.perf_counter() - t0)
            if status == expect:
                mine_ok += 1
            else:
                mine_err += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            ok += mine_ok
            errors += mine_err

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(concurrency)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    stop_at[0] = t0 + duration
    start_evt.set()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    return summarize([{"latencies": latencies, "ok": ok, "errors": errors, "elapsed": elapsed}], concurrency)


def summarize(legs: list[dict], concurrency: int) -> dict:
    """Pool several legs of one kind (interleaved rounds): rate = all accepted / all elapsed time,
    percentiles over every request's latency."""
    latencies = sorted(x for leg in legs for x in leg["latencies"])
    ok, errors = sum(leg["ok"] for leg in legs), sum(leg["errors"] for leg in legs)
    elapsed = sum(leg["elapsed"] for leg in legs)

    def pct(p):
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000 if latencies else float("nan")

    return {"concurrency": concurrency, "requests": len(latencies), "ok": ok, "errors": errors,
            "rps": ok / elapsed, "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99),
            "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
            "rounds": [leg["ok"] / leg["elapsed"] for leg in legs],
            "latencies": latencies, "elapsed": elapsed}


def interleaved(port: int, legs: dict, *, concurrency: int, duration: float, rounds: int, tag: str) -> dict:
    """Measure each of `legs` ({name: (method, path, key, body_fn, expect)}) `rounds` times, alternating
    the order every round (A B, B A, A B, …) so that a change of load on the machine during the run
    falls on every leg alike; return {name: pooled summary}."""
    names = list(legs)
    runs: dict = {name: [] for name in names}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            method, path, key, body_fn, expect = legs[name]
            fn = body_fn(f"{tag}-{name}-c{concurrency}-r{r}") if body_fn else None
            runs[name].append(load(port, method, path, key, concurrency=concurrency, duration=duration,
                                   body_fn=fn, expect=expect))
    return {name: summarize(ms, concurrency) for name, ms in runs.items()}


def brief(m: dict) -> dict:
    """A summary without its raw latencies (for the JSON output)."""
    return {k: v for k, v in m.items() if k != "latencies"}


def send_body(prefix: str):
    def make(tid: int, i: int) -> dict:
        return {"to": f"+1555{(tid * 7919 + i) % 9000 + 1000:07d}", "body": f"{prefix} {tid}-{i} code {i % 999999:06d}",
                "metadata": {"bench": True, "i": i}}
    return make


# ------------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per leg of a round")
    parser.add_argument("--history", type=int, default=1_000_000, help="sends bulk-loaded for the history test")
    parser.add_argument("--server-args", default=" ".join(PRODUCTION_WEB_ARGS),
                        help="gunicorn flags for the service AND the floors (default: the README's production "
                             "command, bench/common.py PRODUCTION_WEB_ARGS)")
    parser.add_argument("--ratio-only", action="store_true",
                        help="only the send-vs-floors section (no history, stats, webhooks, drain)")
    parser.add_argument("--celery-concurrency", type=int, default=8)
    parser.add_argument("--worker-nice", type=int, default=10,
                        help="nice level of the Celery worker and fake Twilio: on a small box they share the CPUs "
                             "with the web tier; in production they run elsewhere (0 = same priority)")
    parser.add_argument("--no-worker", action="store_true",
                        help="don't start the Celery worker: measures the API alone (tasks wait in Redis), as when "
                             "workers run on other machines")
    parser.add_argument("--rounds", type=int, default=None,
                        help="alternating rounds per pair of legs (each --duration s; default 8, 3 with --quick); "
                             "figures pool all rounds")
    parser.add_argument("--drain-seconds", type=float, default=20.0,
                        help="how long to watch the worker drain the queue at the end")
    parser.add_argument("--quick", action="store_true", help="3 s measurements, 100k history (smoke run)")
    parser.add_argument("--webhooks-only", action="store_true",
                        help="only the tenant-webhooks pair: an org with 3 subscribed endpoints vs one with none")
    args = parser.parse_args(argv)
    args.server_args = args.server_args.split()
    if args.quick:
        args.duration, args.history = 3.0, 100_000
    if args.rounds is None:
        args.rounds = 3 if args.quick else 8

    fake_port, web_port = free_port(), free_port()
    env = base_env(f"http://127.0.0.1:{fake_port}")
    print(f"database {DB_URL}, redis {REDIS_URL}, {os.cpu_count()} CPUs, worker nice {args.worker_nice}", flush=True)
    recreate_database(DB_URL)
    recreate_floor_database()
    flush_redis()
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True)
    django_setup(env)
    from django.db import connection

    org_a, key_a = make_org("Bench A")
    org_b, key_b = make_org("Bench B")
    org_c, key_c = make_org("Bench C")
    spread = [make_org(f"Bench S{i}") for i in range(8)]
    connection.close()

    procs = Procs()
    try:
        procs.start([PY, "-m", "tests.fakes.twilio_server", "--port", str(fake_port), "--account",
                     f"{FAKE_SID}:{FAKE_TOKEN}", "--number", FROM, "--no-record"], env, "fake-twilio", nice=args.worker_nice)
        if not args.no_worker:
            procs.start([PY, "-m", "celery", "-A", "sendora_sms", "worker", "-Q", "sms-send,sms-events,sms-periodic",
                         "-P", "threads", "-c", str(args.celery_concurrency), "--loglevel", "WARNING"], env, "celery",
                        nice=args.worker_nice)
        web = procs.start(gunicorn_command(PY, "sendora_sms.wsgi:application", web_port, args.server_args), env,
                          "gunicorn")
        floors = Floors(procs, args.server_args)
        wait_http(fake_port, "/")
        wait_http(web_port, "/health")
        floors.wait()

        send_a = f"/api/v1/orgs/{org_a.pk}/sms/send"
        worker = Worker(args.no_worker)
        results: dict = {"rounds": args.rounds, "duration": args.duration, "server_args": args.server_args}

        # 1. The API: send vs the floors. The worker is up but not taking sms-send tasks (they wait in
        #    Redis): the legs measure the web tier's own work, as the floors do; see the docstring.
        worker.pause()
        results["floors"] = floors_section(web_port=web_port, web_pgid=web.pid, floors=floors, send_path=send_a,
                                           key=key_a, args=args)
        if args.ratio_only:
            print_floors(results["floors"], args)
            print("\nJSON:", json.dumps(results, default=str))
            return 0
        results["webhooks"] = webhooks_pair(web_port, args)
        if args.webhooks_only:
            print_webhooks(results["webhooks"], args)
            return 0

        # the same load spread over 8 orgs: per-org hot rows (quota meter, day counter) are not shared
        spread_paths = [f"/api/v1/orgs/{o.pk}/sms/send" for o, _ in spread]
        spread_keys = [k for _, k in spread]
        load(web_port, "POST", spread_paths, spread_keys, concurrency=8, duration=2, body_fn=send_body("warm"))
        results["spread"] = []
        for c in (16, 64):
            m = load(web_port, "POST", spread_paths, spread_keys, concurrency=c, duration=args.duration,
                     body_fn=send_body(f"spread{c}"))
            results["spread"].append(brief(m))
            print(f"c={c} over 8 orgs: send {m['rps']:.0f}/s p50 {m['p50_ms']:.1f} ms p99 {m['p99_ms']:.1f} ms",
                  flush=True)

        # 2. History: org B stays (nearly) empty, org C gets --history past sends; measured in alternating
        #    rounds on the same server, so both see the same machine.
        send_b, send_c = f"/api/v1/orgs/{org_b.pk}/sms/send", f"/api/v1/orgs/{org_c.pk}/sms/send"
        stats_b, stats_c = f"/api/v1/orgs/{org_b.pk}/sms/stats", f"/api/v1/orgs/{org_c.pk}/sms/stats"
        print(f"bulk-loading {args.history:,} sends into org C …", flush=True)
        load_seconds = bulk_load_history(org_c, args.history)
        print(f"  loaded in {load_seconds:.0f} s", flush=True)
        for path, key in ((send_b, key_b), (send_c, key_c)):
            load(web_port, "POST", path, key, concurrency=4, duration=2, body_fn=send_body("warm-h"))
        # latency proper: one client, so no request waits behind another (target); then 16 clients
        h = interleaved(web_port, {"empty": ("POST", send_b, key_b, send_body, 202),
                                   "full": ("POST", send_c, key_c, send_body, 202)},
                        concurrency=1, duration=args.duration, rounds=args.rounds, tag="history-c1")
        h16 = interleaved(web_port, {"empty": ("POST", send_b, key_b, send_body, 202),
                                     "full": ("POST", send_c, key_c, send_body, 202)},
                          concurrency=16, duration=args.duration, rounds=args.rounds, tag="history-c16")
        st = interleaved(web_port, {"empty": ("GET", stats_b, key_b, None, 200),
                                    "full": ("GET", stats_c, key_c, None, 200)},
                         concurrency=1, duration=min(5, args.duration), rounds=args.rounds, tag="stats")
        stats_full_c16 = load(web_port, "GET", stats_c, key_c, concurrency=16, duration=min(5, args.duration),
                              expect=200)
        # history list: the first page, and a page from the middle of org C's history (cursor pagination)
        list_c = f"/api/v1/orgs/{org_c.pk}/sms/sends?limit=50"
        deep = f"{list_c}&cursor={middle_cursor(org_c)}"
        pages = interleaved(web_port, {"first": ("GET", list_c, key_c, None, 200), "deep": ("GET", deep, key_c, None, 200)},
                            concurrency=1, duration=min(5, args.duration), rounds=args.rounds, tag="list")
        print(f"history list at {args.history:,} sends: first page p95 {pages['first']['p95_ms']:.1f} ms, "
              f"page from the middle p95 {pages['deep']['p95_ms']:.1f} ms", flush=True)
        results.update({"list_first": brief(pages["first"]), "list_deep": brief(pages["deep"])})
        empty, full = h["empty"], h["full"]
        print(f"history (one client): send p50 {empty['p50_ms']:.2f} → {full['p50_ms']:.2f} ms, p95 "
              f"{empty['p95_ms']:.2f} → {full['p95_ms']:.2f} ms; 16 clients: {h16['empty']['rps']:.0f} → "
              f"{h16['full']['rps']:.0f}/s; stats p95 {st['full']['p95_ms']:.1f} ms", flush=True)
        results.update({"history": args.history, "history_load_seconds": load_seconds, "send_empty": brief(empty),
                        "send_full": brief(full), "send_empty_c16": brief(h16["empty"]),
                        "send_full_c16": brief(h16["full"]), "stats_empty": brief(st["empty"]),
                        "stats_full": brief(st["full"]), "stats_full_c16": brief(stats_full_c16),
                        "p50_growth": full["p50_ms"] / empty["p50_ms"] - 1,
                        "p95_growth": full["p95_ms"] / empty["p95_ms"] - 1,
                        "mean_growth": full["mean_ms"] / empty["mean_ms"] - 1,
                        "c16_p50_growth": h16["full"]["p50_ms"] / h16["empty"]["p50_ms"] - 1,
                        "c16_rps_change": h16["full"]["rps"] / h16["empty"]["rps"] - 1})

        # 3. For reference: send vs baseline while the worker dispatches on the same CPUs (the send leg
        #    then also pays for every dispatch it causes: claim, decryption, the HTTP call, the fake
        #    Twilio's own work, the outcome), then how fast it drains what the API legs queued.
        if not args.no_worker:
            worker.resume()
            fl = wrk_leg(floors.flask_port, "/insert", key=None, kind="floor", concurrency=16,
                         duration=args.duration, tag="shared-floor")
            se = wrk_leg(web_port, send_a, key=key_a, kind="send", concurrency=16, duration=args.duration,
                         tag="shared-send")
            fl, se = wrk_pool([fl], 16), wrk_pool([se], 16)
            results["shared_cpus"] = {"floor_flask": fl, "send": se, "ratio": se["rps"] / fl["rps"]}
            print(f"worker consuming on the same CPUs, c=16: send {se['rps']:.0f}/s | floor_flask "
                  f"{fl['rps']:.0f}/s | ratio {results['shared_cpus']['ratio']:.2f}", flush=True)
            results["drain"] = worker.drain(orgs=[org_a, org_b, org_c, *[o for o, _ in spread]],
                                             seconds=args.drain_seconds)
            print(f"worker drained {results['drain']['sends']:,} queued sends at {results['drain']['per_s']:.0f}/s",
                  flush=True)
        connection.close()
    finally:
        procs.stop()

    print_report(results, args)
    return 0


def webhooks_pair(web_port: int, args) -> dict:
    """Issue #15: the send API for an org with 3 endpoints subscribed to every event vs an org with none,
    alternating rounds at c=16 (target: within 10 %). Fan-out happens in the worker when an event is
    published, never in the request; this pair guards that."""
    from sms.tenant_webhooks.services import webhook_endpoint_create

    with_hooks, key_w = make_org("Bench W3")
    without, key_n = make_org("Bench W0")
    for i in range(3):
        webhook_endpoint_create(org=with_hooks, mode="prod", url=f"http://127.0.0.1:9/hook{i}", events=["*"])
    paths = {"none": f"/api/v1/orgs/{without.pk}/sms/send", "three": f"/api/v1/orgs/{with_hooks.pk}/sms/send"}
    keys = {"none": key_n, "three": key_w}
    for name in paths:
        load(web_port, "POST", paths[name], keys[name], concurrency=4, duration=2, body_fn=send_body("warm-w"))
    m = interleaved(web_port, {name: ("POST", paths[name], keys[name], send_body, 202) for name in paths},
                    concurrency=16, duration=args.duration, rounds=args.rounds, tag="webhooks")
    return {"none": brief(m["none"]), "three": brief(m["three"]), "ratio": m["three"]["rps"] / m["none"]["rps"]}


def print_webhooks(w: dict, args) -> None:
    print(f"\n## POST /sms/send with 3 tenant webhook endpoints vs none (c=16, {args.rounds} alternating rounds "
          f"of {args.duration:g} s)\n")
    print("| org | accepted/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|")
    for name, label in (("none", "no endpoints"), ("three", "3 endpoints, every event")):
        m = w[name]
        print(f"| {label} | {m['rps']:.0f} | {m['p50_ms']:.1f} | {m['p99_ms']:.1f} | {m['errors']} |")
    print(f"| **ratio 3 endpoints / none** (target within 10 %) | **{w['ratio']:.2f}** | | | |")


def print_report(r: dict, args) -> None:
    print(f"\ncommand: bench/send_api.py --duration {args.duration} --rounds {args.rounds} --history {args.history} "
          f"--server-args '{' '.join(args.server_args)}' "
          f"--celery-concurrency {args.celery_concurrency} --worker-nice {args.worker_nice}"
          f"{' --no-worker' if args.no_worker else ''}; {os.cpu_count()} CPUs")
    print_floors(r["floors"], args)
    for m in r.get("spread", []):
        base = next(p["floor_flask"] for p in r["floors"] if p["concurrency"] == m["concurrency"])
        print(f"| {m['concurrency']} | send, spread over 8 orgs (python client) | {m['rps']:.0f} | "
              f"{m['rps'] / base['rps']:.2f} | {m['p50_ms']:.1f} | {m['p99_ms']:.1f} | | | {m['errors']} |")
    e, f, e16, f16 = r["send_empty"], r["send_full"], r["send_empty_c16"], r["send_full_c16"]
    print(f"\n## History: {r['history']:,} sends in the org (loaded in {r['history_load_seconds']:.0f} s)\n")
    print("| org history | clients | send/s | p50 ms | p95 ms | mean ms | p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for label, m in (("empty", e), (f"{r['history']:,}", f), ("empty", e16), (f"{r['history']:,}", f16)):
        print(f"| {label} | {m['concurrency']} | {m['rps']:.0f} | {m['p50_ms']:.2f} | {m['p95_ms']:.2f} | "
              f"{m['mean_ms']:.2f} | {m['p99_ms']:.2f} |")
    print(f"\nwith history, one client: p50 {r['p50_growth'] * 100:+.1f} %, p95 {r['p95_growth'] * 100:+.1f} %, mean "
          f"{r['mean_growth'] * 100:+.1f} %  (target: within 20 %); 16 clients: p50 {r['c16_p50_growth'] * 100:+.1f} %, "
          f"throughput {r['c16_rps_change'] * 100:+.1f} %")
    print(f"GET …/sms/sends?limit=50 at {r['history']:,} sends, one client: first page p50 / p95 "
          f"{r['list_first']['p50_ms']:.1f} / {r['list_first']['p95_ms']:.1f} ms; a page from the middle of the "
          f"history {r['list_deep']['p50_ms']:.1f} / {r['list_deep']['p95_ms']:.1f} ms")
    print(f"stats p50 / p95 ms, one reader: empty {r['stats_empty']['p50_ms']:.1f} / {r['stats_empty']['p95_ms']:.1f}, "
          f"{r['history']:,} sends {r['stats_full']['p50_ms']:.1f} / {r['stats_full']['p95_ms']:.1f} (target p95 < 50 ms); "
          f"{r['stats_full_c16']['p95_ms']:.1f} ms p95 with 16 concurrent readers")
    print_webhooks(r["webhooks"], args)
    if "shared_cpus" in r:
        sc = r["shared_cpus"]
        print(f"\nworker consuming on the same CPUs (c=16, one round): send {sc['send']['rps']:.0f}/s, floor_flask "
              f"{sc['floor_flask']['rps']:.0f}/s, ratio {sc['ratio']:.2f}")
        d = r["drain"]
        print(f"drain: {d['sends']:,} of {d['queued_at_start']:,} queued sends taken by the worker in "
              f"{d['seconds']:.0f} s ({d['per_s']:.0f}/s); {d['left']:,} left queued at the end")
    print("\nJSON:", json.dumps(r, default=str))


if __name__ == "__main__":
    raise SystemExit(main())
