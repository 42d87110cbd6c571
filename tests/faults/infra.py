"""Fault-injection machinery for tests/faults: processes we own and can break.

Nothing here touches the machine's shared services. Every fault is injected into something the test
started itself:

- `RedisServer`: a private `redis-server` on a free port (no persistence), stopped and restarted to
  simulate a broker/cache outage. The shared Redis on 6379 is never touched.
- `TcpProxy`: a TCP forwarder 127.0.0.1:<port> → PostgreSQL (127.0.0.1:5432) in a thread. `cut()`
  resets every proxied connection and stops listening (new connections are refused); `restore()`
  listens again on the same port. The app under test connects through it, so "the database went
  away" is simulated without restarting the PostgreSQL cluster.
- `AppServer`: the real WSGI app under gunicorn (gthread) in a subprocess.
- `CeleryProcess`: a real Celery worker or beat in its own process group (so `kill -9` reaches the
  prefork children too).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import requests

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "faults"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable, *, timeout: float = 15.0, interval: float = 0.05, message: str = "condition"):
    """Poll `predicate` until it returns something truthy (returned) or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def write_figures(name: str, figures: dict) -> None:
    """Print a test's figures and keep them in test-artifacts/faults/<name>.json (docs/reliability.md)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(figures, indent=2, sort_keys=True, default=str)
    (ARTIFACTS / f"{name}.json").write_text(text + "\n")
    print(f"\n[faults] {name}: {text}")


class _LoggedProcess:
    """A subprocess in its own session, output to a temp log file."""

    process: subprocess.Popen

    def _spawn(self, argv: list[str], env: dict, prefix: str) -> None:
        fd, self.log_path = tempfile.mkstemp(prefix=prefix, suffix=".log")
        self._log = os.fdopen(fd, "w+")
        self.process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return Path(self.log_path).read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill9(self) -> None:
        """SIGKILL the whole process group (a crash: no shutdown handlers, no acks, no cleanup)."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        if self.alive():
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
            except ProcessLookupError:
                pass
        try:
            self._log.close()
            os.unlink(self.log_path)
        except OSError:
            pass


# --- Redis ------------------------------------------------------------------------------------

class RedisServer(_LoggedProcess):
    """A private redis-server on 127.0.0.1:<free port>, no RDB/AOF: a restart loses everything."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None  # type: ignore[assignment]
        self.start()

    def start(self) -> None:
        self._spawn(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no", "--daemonize", "no"], dict(os.environ), prefix="faults-redis-")
        wait_for(self.ping, timeout=10, message=f"redis-server on {self.port}")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def down(self) -> None:
        """Stop the server (its data goes with it)."""
        self.stop()

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=2)


# --- TCP proxy in front of PostgreSQL ---------------------------------------------------------

class TcpProxy:
    """127.0.0.1:<port> → upstream, with cut() / restore()."""

    def __init__(self, upstream: tuple[str, int], port: int | None = None):
        self.upstream = upstream
        self.port = port or free_port()
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.accepted = 0
        self.reset_connections = 0
        self.restore()

    def restore(self) -> None:
        """Listen (again) on the same port."""
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(256)
            self._listener = listener
        threading.Thread(target=self._accept_loop, args=(listener,), daemon=True, name="TcpProxy-accept").start()

    def cut(self) -> int:
        """Stop listening (new connections are refused) and reset every open connection. Returns how many."""
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, set()
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        for conn in conns:
            _hard_close(conn)
        self.reset_connections += len(conns) // 2
        return len(conns) // 2

    def close(self) -> None:
        self.cut()

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # listener closed by cut()
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _hard_close(client)
                continue
            with self._lock:
                if self._listener is not listener:  # cut while connecting
                    _hard_close(client)
                    _hard_close(upstream)
                    continue
                self._conns.update((client, upstream))
                self.accepted += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True, name="TcpProxy-pump").start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


def _hard_close(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the peer sees the connection reset, as when a server dies."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


# --- the app and Celery -----------------------------------------------------------------------

class AppServer(_LoggedProcess):
    """gunicorn (gthread) serving sendora_sms.wsgi on 127.0.0.1:<port>."""

    def __init__(self, env: dict, port: int, *, workers: int = 2, threads: int = 8):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._spawn([sys.executable, "-m", "gunicorn", "sendora_sms.wsgi:application", "-b", f"127.0.0.1:{port}",
                     "-w", str(workers), "-k", "gthread", "--threads", str(threads), "--timeout", "60",
                     "--graceful-timeout", "5", "--backlog", "2048"], env, prefix="faults-gunicorn-")
        wait_for(self._up, timeout=30, interval=0.1, message="gunicorn to answer")

    def _up(self) -> bool:
        if not self.alive():
            raise RuntimeError(f"gunicorn exited:\n{self.output()[-4000:]}")
        try:
            return requests.get(self.url + "/health", timeout=2).status_code in (200, 503)
        except requests.RequestException:
            return False


class CeleryProcess(_LoggedProcess):
    """`celery -A sendora_sms worker …` (every queue) or `celery -A sendora_sms beat`."""

    def __init__(self, env: dict, *, kind: str = "worker", concurrency: int = 4, name: str = "faults"):
        from sendora_sms.celery import QueueNames

        self.kind = kind
        if kind == "worker":
            argv = [sys.executable, "-m", "celery", "-A", "sendora_sms", "worker", "-Q", ",".join(QueueNames.all()),
                    "-c", str(concurrency), "--pool", "prefork", "--without-gossip", "--without-mingle",
                    "--without-heartbeat", "-l", "info", "-n", f"{name}-{os.getpid()}@%h"]
        else:
            self._schedule_dir = tempfile.mkdtemp(prefix="faults-beat-")
            argv = [sys.executable, "-m", "celery", "-A", "sendora_sms", "beat", "-l", "info",
                    "-s", os.path.join(self._schedule_dir, "schedule")]
        self._spawn(argv, env, prefix=f"faults-{kind}-")
        marker = " ready." if kind == "worker" else "beat: Starting"
        wait_for(lambda: self._ready(marker), timeout=40, interval=0.1, message=f"celery {kind} ready")

    def _ready(self, marker: str) -> bool:
        if not self.alive():
            raise RuntimeError(f"celery {self.kind} exited early:\n{self.output()[-4000:]}")
        return marker in self.output()
