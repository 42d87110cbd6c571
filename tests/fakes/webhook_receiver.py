"""A tenant's webhook endpoint on 127.0.0.1: verifies every delivery with the `standardwebhooks` library (as a
tenant would), records it, and answers from a script (e.g. fail 3 times, then 200; 410; slow)."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Delivery:
    path: str
    headers: dict
    body: bytes
    verified: bool
    payload: dict | None


@dataclass
class Receiver:
    secrets: dict = field(default_factory=dict)  # path → list of secrets any of which must verify
    script: dict = field(default_factory=dict)  # path → list of status codes to answer, in order (then 200)
    delay: float = 0.0
    deliveries: list = field(default_factory=list)

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                verified, payload = False, None
                for secret in receiver.secrets.get(self.path, []):
                    try:
                        payload = Webhook(secret).verify(body, headers)
                        verified = True
                        break
                    except WebhookVerificationError:
                        continue
                with receiver._lock:
                    receiver.deliveries.append(Delivery(self.path, headers, body, verified, payload))
                    script = receiver.script.get(self.path) or []
                    status = script.pop(0) if script else 200
                if receiver.delay:
                    time.sleep(receiver.delay)
                reply = json.dumps({"ok": status < 300}).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def at(self, path: str) -> list:
        return [d for d in self.deliveries if d.path == path]
