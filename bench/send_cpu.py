"""In-process CPU profile of one request path (issue #14): the WSGI app called directly, no server, no client.

    .venv/bin/python bench/send_cpu.py [--n 1000] [--profile] [--path send|status]

Uses the database of bench/send_api.py ($BENCH_DATABASE_URL, migrated by it; a fresh org is created
here) and its Redis ($BENCH_REDIS_URL). Prints CPU ms per request of this process (time.process_time):
the web tier's own CPU for one send, free of the machine's noise. --profile prints cProfile's top
functions by cumulative time.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import stack_env  # noqa: E402

DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sendora_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sample", action="store_true", help="a low-overhead CPU-time sampling profile instead (ITIMER_PROF)")
    parser.add_argument("--profile-out", help="with --profile: also dump the cProfile stats to this file (pstats)")
    parser.add_argument("--path", default="send", choices=["send", "status"],
                        help="send: POST …/sms/send; status: the two signed Twilio status callbacks of a send")
    args = parser.parse_args()
    os.environ.update(stack_env(db_url=DB_URL, redis_url=REDIS_URL, twilio_url="http://127.0.0.1:9",
                                 SMS_PUBLIC_BASE_URL="http://127.0.0.1"))
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler

    from bench.send_api import make_org

    org, key = make_org(f"CPU {time.time()}")
    app = WSGIHandler()
    path = f"/api/v1/orgs/{org.pk}/sms/send"

    if args.path == "status":
        one = _status_callbacks(app, org)
    else:
        one = None

    def send_one(i):
        body = json.dumps({"to": f"+1555{i % 9000000 + 1000000:07d}", "body": f"cpu {time.time()} {i}",
                           "metadata": {"bench": True, "i": i}}).encode()
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
                   "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)),
                   "CONTENT_TYPE": "application/json", "HTTP_X_API_KEY": key, "REMOTE_ADDR": "127.0.0.1",
                   "HTTP_HOST": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.errors": sys.stderr}
        status = []
        out = b"".join(app(environ, lambda s, h, e=None: status.append(s)))
        if not status[0].startswith("202"):
            raise SystemExit(f"{status[0]} {out[:300]!r}")

    one = one or send_one
    for i in range(50):
        one(i)
    prof = cProfile.Profile(time.process_time) if args.profile else None  # CPU, not wall
    c0, w0 = time.process_time(), time.perf_counter()
    if prof:
        prof.enable()
    sampler = None
    if args.sample:
        from bench.sampler import Sampler
        sampler = Sampler()
        sampler.start()
    for i in range(args.n):
        one(1000 + i)
    if prof:
        prof.disable()
    if sampler:
        sampler.stop()
        print(sampler.report(top=90))
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    what = "sends" if args.path == "send" else "messages (2 status callbacks each)"
    print(f"{args.n} {what}: {cpu * 1000 / args.n:.3f} ms CPU each (this process), {wall * 1000 / args.n:.3f} ms wall")
    if prof:
        s = io.StringIO()
        if args.profile_out:
            prof.dump_stats(args.profile_out)
        pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(70)
        print(s.getvalue())
    return 0


def _status_callbacks(app, org):
    """one(i): a send already accepted by Twilio (stored with its provider id), then its `sent` and
    `delivered` callbacks, signed as the fake Twilio signs them, posted to the app."""
    from urllib.parse import urlencode

    from twilio.request_validator import RequestValidator

    from sms.models import Send
    from sms.services.dispatch import status_callback_url
    from bench.send_api import FAKE_SID, FAKE_TOKEN, FROM

    validator = RequestValidator(FAKE_TOKEN)

    def one(i):
        sid = f"SM{uuid.uuid4().hex}"
        send = Send.objects.create(org=org, to=f"+1628{i % 10_000_000:07d}", from_number=FROM, body=f"cb {i}",
                                   status="sending", mode="prod", provider="twilio", provider_message_id=sid,
                                   dispatch_state="awaiting_provider")
        url = status_callback_url(org.pk, send.pk)
        path, _, query = url.partition("?")
        path = path.split("127.0.0.1", 1)[1] if "127.0.0.1" in path else path
        for status in ("sent", "delivered"):
            params = {"ApiVersion": "2010-04-01", "AccountSid": FAKE_SID, "From": FROM, "To": send.to,
                      "MessageSid": sid, "MessageStatus": status, "SmsSid": sid, "SmsStatus": status}
            body = urlencode(params).encode()
            environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path.replace("http://", ""), "QUERY_STRING": query,
                       "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "wsgi.url_scheme": "http",
                       "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)),
                       "CONTENT_TYPE": "application/x-www-form-urlencoded", "REMOTE_ADDR": "127.0.0.1",
                       "HTTP_HOST": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.errors": sys.stderr,
                       "HTTP_X_TWILIO_SIGNATURE": validator.compute_signature(url, params)}
            status_line = []
            out = b"".join(app(environ, lambda s, h, e=None: status_line.append(s)))
            if not status_line[0].startswith("204"):
                raise SystemExit(f"{status_line[0]} {out[:300]!r}")
    return one


if __name__ == "__main__":
    raise SystemExit(main())
