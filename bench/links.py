"""Benchmark: the short-link redirect (GET {short base}/{code}, cached) beside the Flask redirect floor, in one run.

    .venv/bin/python bench/links.py                 # 4 alternating rounds × 8 s per leg at c=16 and c=64
    .venv/bin/python bench/links.py --quick         # 2 rounds × 4 s

What it starts (127.0.0.1, all stopped at the end):
  - PostgreSQL databases `sendora_bench_links` (the service; dropped, re-created, migrated) and
    `sendora_bench_floor` (the floor's `floor_links` table) — $BENCH_DATABASE_URL / $BENCH_FLOOR_DATABASE_URL;
  - Redis db 4 (cache) and 5 (broker + click queue), flushed — $BENCH_REDIS_CACHE_URL / $BENCH_REDIS_BROKER_URL;
  - the service under gunicorn, and the floor (bench/floors/floor_flask.py: Flask + psycopg2, one indexed SELECT, 302)
    under the SAME command: `gunicorn -k gthread -w 4 --threads 4`.
Load: wrk (C, keep-alive), 2 threads, `--latency`, each request for one of --links codes in turn, phone
user agents; legs alternate (floor, links, links, floor, …) so drift on the shared machine falls on both.

The codes are real: --links sends accepted through the send service (`send_create`), each with one URL, so
each code's cache entry was written when its send committed. A warm-up leg lets every gunicorn worker's
process cache see every code; the measured legs are cache hits (no database query; one RPUSH per click).

Accounting ("none lost"): after the load the click queue is drained (services.clicks_drain, as the worker's
beat task does) and the recorded rows are compared with what wrk counted: every completed 302 of a phone
leg must be a recorded click, every request of a preview leg (link-unfurler agents, and HEAD) a preview and
no click. wrk does not count requests still in flight when a leg ends, which the server may have answered
and recorded: up to one per connection per leg, so recorded ∈ [completed, completed + connections × legs].
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import free_port  # noqa: E402
from bench.send_api import Procs, wait_http  # noqa: E402

PY = sys.executable
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sendora_bench_links")
FLOOR_DB_URL = os.environ.get("BENCH_FLOOR_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sendora_bench_floor")
CACHE_URL = os.environ.get("BENCH_REDIS_CACHE_URL", "redis://127.0.0.1:6379/4")
BROKER_URL = os.environ.get("BENCH_REDIS_BROKER_URL", "redis://127.0.0.1:6379/5")
LINK_HOST = "sndr.link"
TEST_ENCRYPTION_KEY = "c2VuZG9yYS10ZXN0LWtleS0wMDAwMDAwMDAwMDAwMDA="
PHONE_UAS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile "
    "Safari/537.36",
]
PREVIEW_UAS = ["facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", "WhatsApp/2.23.20.0 A",
               "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "TelegramBot (like TwitterBot)"]


def service_env() -> dict:
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    env.update({
        "DATABASE_URL": DB_URL, "REDIS_URL": CACHE_URL, "CELERY_BROKER_URL": BROKER_URL,
        "SECRET_KEY": "bench-secret-key-not-for-production", "DEBUG": "false", "ALLOWED_HOSTS": "*",
        "SMS_ENCRYPTION_KEYS": env.get("SMS_ENCRYPTION_KEYS", TEST_ENCRYPTION_KEY),
        "SMS_LINK_BASE_URL": f"https://{LINK_HOST}", "DJANGO_SETTINGS_MODULE": "sendora_sms.settings",
        "PYTHONPATH": str(ROOT), "NO_PROXY": "127.0.0.1,localhost",
    })
    return env


def recreate(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def make_links(n: int) -> list[tuple[str, str]]:
    """n sends through the send service, one URL each → [(code, target)]."""
    from audit.services import Actor
    from orgs.models import KeyMode, Role
    from orgs.services import api_key_create, org_create
    from sms.links.models import Link
    from sms.services import provider_account_set_twilio, send_create

    org = org_create(name="Bench links", plan="enterprise", monthly_quota=100_000_000, send_rate=1_000_000)
    org.pumping_limit = 100_000_000  # n sends to one number range in seconds: not what the pumping check is for
    org.save(update_fields=["pumping_limit"])
    provider_account_set_twilio(org=org, account_sid="AC" + "b" * 32, from_number="+15005550006",
                                auth_token="bench_auth_token_0123456789abcdef", actor=Actor.system("bench"))
    key, _ = api_key_create(org=org, role=Role.MEMBER, mode=KeyMode.PROD)
    for i in range(n):
        send_create(org=org, api_key=key, to=f"+1415555{i % 10000:04d}",
                    body=f"Your order {i} shipped: https://shop.example.com/orders/{i}?utm_source=sms#track")
    return list(Link.objects.order_by("created_at").values_list("code", "url"))


def make_floor(links: list[tuple[str, str]]) -> None:
    import psycopg

    with psycopg.connect(FLOOR_DB_URL, autocommit=True) as conn:
        conn.execute("CREATE TABLE floor_links (code text primary key, target text)")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO floor_links (code, target) VALUES (%s, %s)", links)
        conn.execute("ANALYZE floor_links")


_LUA = """
local paths = {%(paths)s}
local uas = {%(uas)s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("%(method)s", paths[(i %% #paths) + 1], {["Host"] = "%(host)s", ["User-Agent"] = uas[(i %% #uas) + 1]})
end
"""


def wrk(port: int, paths: list[str], uas: list[str], *, host: str, method: str, concurrency: int,
        duration: float) -> dict:
    script = _LUA % {"paths": ",".join(json.dumps(p) for p in paths), "uas": ",".join(json.dumps(u) for u in uas),
                     "host": host, "method": method}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    out = subprocess.run(["wrk", "-t2", f"-c{concurrency}", f"-d{max(1, round(duration))}s", "--latency", "--timeout", "10s",
                          "-s", f.name, f"http://127.0.0.1:{port}/"], capture_output=True, text=True, check=True).stdout
    os.unlink(f.name)
    return parse_wrk(out)


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(out: str) -> dict:
    m = re.search(r"(\d+) requests in ([\d.]+)(s|m)", out)
    requests, elapsed = int(m.group(1)), float(m.group(2)) * (60 if m.group(3) == "m" else 1)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    pct = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}
    return {"requests": requests, "elapsed": elapsed, "rps": requests / elapsed, "p50_ms": pct.get("50"),
            "p99_ms": pct.get("99"), "non_3xx": int(bad.group(1)) if bad else 0,
            "socket_errors": sum(map(int, errors.groups())) if errors else 0}


def pooled(legs: list[dict]) -> dict:
    total, elapsed = sum(x["requests"] for x in legs), sum(x["elapsed"] for x in legs)
    return {"requests": total, "rps": total / elapsed, "p50_ms": max(x["p50_ms"] for x in legs),
            "p99_ms": max(x["p99_ms"] for x in legs), "rounds_rps": [round(x["rps"]) for x in legs],
            "non_3xx": sum(x["non_3xx"] for x in legs), "socket_errors": sum(x["socket_errors"] for x in legs)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--links", type=int, default=500)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--web-threads", type=int, default=4)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration = 2, 4.0

    import redis

    recreate(DB_URL)
    recreate(FLOOR_DB_URL)
    for url in (CACHE_URL, BROKER_URL):
        redis.Redis.from_url(url).flushdb()
    env = service_env()
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True)
    os.environ.update(env)
    import django

    django.setup()
    from sms.links import services
    from sms.links.models import Link, LinkClick

    links = make_links(args.links)
    make_floor(links)
    codes = [code for code, _ in links]
    ours_paths, floor_paths = [f"/{c}" for c in codes], [f"/r/{c}" for c in codes]

    procs = Procs()
    web_port, floor_port = free_port(), free_port()
    server = ["-k", "gthread", "-w", str(args.web_workers), "--threads", str(args.web_threads), "--backlog", "2048",
              "--log-level", "warning"]
    floor_dsn = "dbname={} user=postgres host=127.0.0.1".format(FLOOR_DB_URL.rsplit("/", 1)[1])
    results: dict = {}
    try:
        procs.start([PY, "-m", "gunicorn", "sendora_sms.wsgi:application", "-b", f"127.0.0.1:{web_port}", *server],
                    env, "links-gunicorn")
        procs.start([PY, "-m", "gunicorn", "--chdir", str(ROOT / "bench" / "floors"), "floor_flask:app", "-b",
                     f"127.0.0.1:{floor_port}", *server], {**env, "FLOOR_DSN": floor_dsn}, "floor-gunicorn")
        wait_http(web_port, "/health")
        wait_http(floor_port, f"/r/{codes[0]}")
        # warm-up: every worker's connections and process cache, both servers (these clicks are drained away)
        for port, paths in ((web_port, ours_paths), (floor_port, floor_paths)):
            wrk(port, paths, PHONE_UAS, host=LINK_HOST, method="GET", concurrency=64, duration=3)
        services.clicks_drain()
        base_clicks, base_previews = LinkClick.objects.filter(kind="click").count(), LinkClick.objects.filter(
            kind="preview").count()
        base_counters = sum(Link.objects.values_list("clicks", flat=True))

        for c in args.concurrency:
            legs: dict = {"floor_flask": [], "links": []}
            for r in range(args.rounds):
                order = ["floor_flask", "links"] if r % 2 == 0 else ["links", "floor_flask"]
                for name in order:
                    port, paths = (floor_port, floor_paths) if name == "floor_flask" else (web_port, ours_paths)
                    legs[name].append(wrk(port, paths, PHONE_UAS, host=LINK_HOST, method="GET", concurrency=c,
                                          duration=args.duration))
            results[f"c{c}"] = {name: pooled(v) for name, v in legs.items()}
            results[f"c{c}"]["ratio"] = results[f"c{c}"]["links"]["rps"] / results[f"c{c}"]["floor_flask"]["rps"]

        click_legs = args.rounds * len(args.concurrency)
        click_completed = sum(results[f"c{c}"]["links"]["requests"] - results[f"c{c}"]["links"]["non_3xx"]
                              for c in args.concurrency)
        max_conns = sum(c * args.rounds for c in args.concurrency)
        # previews: unfurler agents (GET) and HEAD requests, at c=64
        preview_get = wrk(web_port, ours_paths, PREVIEW_UAS, host=LINK_HOST, method="GET", concurrency=64,
                          duration=args.duration / 2)
        preview_head = wrk(web_port, ours_paths, PHONE_UAS, host=LINK_HOST, method="HEAD", concurrency=64,
                           duration=args.duration / 2)
        queued = services._redis().llen(env.get("SMS_LINK_CLICKS_QUEUE", "sendora:link-clicks"))
        t0 = time.monotonic()
        drained = services.clicks_drain()
        drain_s = time.monotonic() - t0
        clicks = LinkClick.objects.filter(kind="click").count() - base_clicks
        previews = LinkClick.objects.filter(kind="preview").count() - base_previews
        counted = sum(Link.objects.values_list("clicks", flat=True)) - base_counters
        preview_completed = preview_get["requests"] + preview_head["requests"]
        results["accounting"] = {
            "click_legs": click_legs, "completed_302": click_completed, "clicks_recorded": clicks,
            "link_click_counters": counted, "max_in_flight_uncounted": max_conns,
            "preview_requests_completed": preview_completed, "previews_recorded": previews,
            "queued_before_drain": queued, "drained": drained, "drain_seconds": round(drain_s, 2),
            "drain_per_s": round(drained / drain_s) if drain_s else None,
            "none_lost": click_completed <= clicks <= click_completed + max_conns and counted == clicks
            and preview_completed <= previews <= preview_completed + 128,
        }
    finally:
        procs.stop()

    if args.json:
        print(json.dumps(results))
        return 0
    print(f"\n| c | target | req/s | p50 ms | p99 ms | rounds req/s | non-3xx |\n|---|---|---|---|---|---|---|")
    for c in args.concurrency:
        for name in ("floor_flask", "links"):
            m = results[f"c{c}"][name]
            print(f"| {c} | {name} | {m['rps']:,.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {m['rounds_rps']} | "
                  f"{m['non_3xx'] + m['socket_errors']} |")
        print(f"| {c} | **ratio links / floor** | **{results[f'c{c}']['ratio']:.2f}** | | | | |")
    print("\naccounting:", json.dumps(results["accounting"], indent=1))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
