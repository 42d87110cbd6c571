"""In-process CPU per send of two checkouts, A/B in alternating batches (issue #14).

    .venv/bin/python bench/send_cpu_ab.py TREE_A TREE_B [--batches 16] [--per 100]

This machine's speed drifts by tens of percent within minutes, so two `bench/send_cpu.py` runs one after the other
cannot tell a 5 % change from noise. Here one child process per checkout (each its own org, the WSGI app called
directly as in bench/send_cpu.py) runs `--per` sends whenever told to, in turns (A B, B A, A B …), and reports the
CPU seconds of each batch (time.process_time): both see the same minutes. The second child measured a few per cent
slower than the first with identical code here, so run both orders (A B, then B A) and read the change from both.

Uses $BENCH_DATABASE_URL (migrated: run bench/send_api.py once) and $BENCH_REDIS_URL, as bench/send_cpu.py does.
Make the other checkout with `git worktree add var/base <commit>` (var/ is ignored); both children run with this
script's Python, or with `--pythons PY_A PY_B` each its own (the same tree twice compares interpreters).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time


def child(tree: str, tag: str, path_kind: str = "send") -> None:
    sys.path.insert(0, tree)
    os.chdir(tree)
    from bench.common import stack_env

    os.environ.update(stack_env(db_url=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sendora_bench"),
                                redis_url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
                                twilio_url="http://127.0.0.1:9", SMS_PUBLIC_BASE_URL="http://127.0.0.1"))
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler

    from bench.send_api import make_org

    org, key = make_org(f"AB {tag} {time.time()}")
    app = WSGIHandler()
    path = f"/api/v1/orgs/{org.pk}/sms/send"
    counter = 0

    def send_one() -> None:
        nonlocal counter
        counter += 1
        body = json.dumps({"to": f"+1555{counter % 9000000 + 1000000:07d}", "body": f"ab{tag} {time.time()} {counter}",
                           "metadata": {"bench": True, "i": counter}}).encode()
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
                   "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)),
                   "CONTENT_TYPE": "application/json", "HTTP_X_API_KEY": key, "REMOTE_ADDR": "127.0.0.1",
                   "HTTP_HOST": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.errors": sys.stderr}
        status: list = []
        out = b"".join(app(environ, lambda s, h, e=None: status.append(s)))
        if not status[0].startswith("202"):
            raise SystemExit(f"{status[0]} {out[:300]!r}")

    if path_kind == "status":  # the two signed status callbacks of a send, as bench/send_cpu.py --path status
        from bench.send_cpu import _status_callbacks

        callbacks = _status_callbacks(app, org)

        def send_one() -> None:  # noqa: F811 — one message's callbacks instead of one send
            nonlocal counter
            counter += 1
            callbacks(counter)

    for _ in range(100):  # warm-up: connections, prepared statements, caches
        send_one()
    print("ready", flush=True)
    for line in sys.stdin:
        c0 = time.process_time()
        for _ in range(int(line)):
            send_one()
        print(time.process_time() - c0, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("trees", nargs=2)
    parser.add_argument("--batches", type=int, default=16)
    parser.add_argument("--per", type=int, default=100)
    parser.add_argument("--pythons", nargs=2, metavar=("PY_A", "PY_B"),
                        help="the interpreter of each child (default: this script's) — to compare Python versions")
    parser.add_argument("--path", default="send", choices=["send", "status"],
                        help="status: per message, its two signed status callbacks (bench/send_cpu.py --path status)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.trees, path_kind=args.path)
        return 0
    trees = [os.path.abspath(t) for t in args.trees]
    pythons = args.pythons or [sys.executable, sys.executable]
    procs = [subprocess.Popen([pythons[i], os.path.abspath(__file__), "--child", "--path", args.path, tree, str(i)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for i, tree in enumerate(trees)]
    for proc in procs:
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit("a child failed to start")
    cpu = [0.0, 0.0]
    for batch in range(args.batches):
        for k in ((0, 1) if batch % 2 == 0 else (1, 0)):
            procs[k].stdin.write(f"{args.per}\n")
            procs[k].stdin.flush()
            cpu[k] += float(procs[k].stdout.readline())
            print(f"\rbatch {batch + 1}/{args.batches}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    for proc in procs:
        proc.stdin.close()
        proc.wait()
    a, b = (seconds * 1000 / (args.batches * args.per) for seconds in cpu)
    print(f"A {trees[0]}: {a:.3f} ms CPU/{args.path} | B {trees[1]}: {b:.3f} ms CPU/{args.path} | B/A {b / a - 1:+.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
