"""Fake Sinch SMS REST API (xms v1) on 127.0.0.1, speaking its wire format.

- `POST /xms/v1/{service_plan_id}/batches` (`Authorization: Bearer <API token>`, JSON `mt_text`) → 201
  batch (`id` a ULID-like 26 chars); 401 for an unknown plan/token; 400 `syntax_invalid_parameter_format`.
- `GET …/batches?client_reference=…`, `GET …/batches/{id}/delivery_report?type=full`.
- Callbacks to the batch's `callback_url`: `recipient_delivery_report_sms` (per recipient), and `mo_text`
  inbound messages, JSON, signed with Sinch's HMAC: `x-sinch-webhook-signature` =
  base64(HMAC-SHA256(callback secret, raw_body + "." + nonce + "." + timestamp)), with the nonce,
  timestamp and algorithm (`HmacSHA256`) headers.
- Fault injection as the fake Twilio (tests/fakes/provider_base.py).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import string
import time
from datetime import datetime, timezone

from tests.fakes.provider_base import FakeProviderServer, new_id

_ULID = string.digits + "ABCDEFGHJKMNPQRSTVWXYZ"
CODES = {"Dispatched": 401, "Queued": 400, "Delivered": 0, "Failed": 402, "Expired": 406, "Rejected": 408,
         "Deleted": 0, "Aborted": 0, "Cancelled": 407}


def ulid() -> str:
    return "".join(random.choice(_ULID) for _ in range(26))


def sign(*, secret: str, body: bytes, nonce: str, timestamp: str) -> str:
    data = body + b"." + nonce.encode() + b"." + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), data, hashlib.sha256).digest()).decode()


def signed_headers(*, secret: str, body: bytes, timestamp: int | None = None) -> dict:
    nonce = ulid()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {"Content-Type": "application/json", "x-sinch-webhook-signature": sign(secret=secret, body=body, nonce=nonce,
                                                                                   timestamp=ts),
            "x-sinch-webhook-signature-nonce": nonce, "x-sinch-webhook-signature-timestamp": ts,
            "x-sinch-webhook-signature-algorithm": "HmacSHA256"}


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeSinch(FakeProviderServer):
    name = "sinch"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.plans: dict[str, tuple[str, str]] = {}  # service plan id → (API token, callback secret)

    def add_plan(self, plan_id: str | None = None, token: str | None = None, secret: str | None = None):
        plan_id = plan_id or new_id()
        token, secret = token or new_id(), secret or new_id()
        with self._lock:
            self.plans[plan_id] = (token, secret)
        return plan_id, token, secret

    def _is_create(self, path: str) -> bool:
        return path.startswith("/xms/v1/") and path.endswith("/batches")

    def _error_body(self, status: int):
        return {"code": {401: "unauthorized", 403: "forbidden", 429: "too_many_requests"}.get(
            status, "internal_error" if status >= 500 else "syntax_invalid_parameter_format"),
            "text": f"fake Sinch error {status}"}

    def _route(self, h, method, path, query, body):
        parts = path.strip("/").split("/")  # xms v1 {plan} batches [id] [delivery_report]
        if len(parts) < 4 or parts[:2] != ["xms", "v1"] or parts[3] != "batches":
            return 404, self._error_body(404)
        plan = self.plans.get(parts[2])
        auth = h.headers.get("Authorization") or ""
        if plan is None or auth != f"Bearer {plan[0]}":
            return 401, self._error_body(401)
        if method == "POST" and len(parts) == 4:
            return self._create(parts[2], body)
        if method == "GET" and len(parts) == 4:
            ref = (query.get("client_reference") or [None])[0]
            with self._lock:
                batches = [b for b in self.messages.values() if b["_plan"] == parts[2]
                           and (ref is None or b.get("client_reference") == ref)]
            batches = [{k: v for k, v in b.items() if not k.startswith("_")} for b in reversed(batches)]
            return 200, {"count": len(batches), "page": 0, "page_size": len(batches), "batches": batches}
        if method == "GET" and len(parts) == 6 and parts[5] == "delivery_report":
            batch = self.messages.get(parts[4])
            if batch is None:
                return 404, self._error_body(404)
            status = batch["_status"]
            return 200, {"type": "delivery_report_sms", "batch_id": batch["id"], "total_message_count": 1,
                         "client_reference": batch.get("client_reference"),
                         "statuses": [{"code": CODES.get(status, 0), "status": status, "count": 1,
                                       "recipients": batch["to"]}]}
        return 404, self._error_body(404)

    def _create(self, plan_id: str, body: bytes):
        try:
            data = json.loads(body)
        except ValueError:
            return 400, self._error_body(400)
        if not data.get("to") or not data.get("from") or not data.get("body"):
            return 400, {"code": "syntax_constraint_violation", "text": "to, from and body are required"}
        now = _now_iso()
        batch = {"id": ulid(), "to": data["to"], "from": data["from"], "canceled": False, "body": data["body"],
                 "type": "mt_text", "created_at": now, "modified_at": now,
                 "delivery_report": data.get("delivery_report", "none"), "callback_url": data.get("callback_url"),
                 "client_reference": data.get("client_reference"), "flash_message": False,
                 "_plan": plan_id, "_status": "Queued"}
        with self._lock:
            self.messages[batch["id"]] = batch
        if str(data["to"][0]).lstrip("+") in self.blocked and batch["callback_url"]:
            self._auto(self.deliver_status, batch["id"], statuses=["Deleted"])
        elif self.auto_callbacks and batch["callback_url"]:
            self._auto(self.deliver_status, batch["id"])
        return 201, {k: v for k, v in batch.items() if not k.startswith("_")}

    def deliver_status(self, batch_id: str, status: str, *, url: str | None = None, secret: str | None = None,
                       timestamp: int | None = None, signed: bool = True) -> int | None:
        batch = self.messages[batch_id]
        batch["_status"] = status
        payload = {"at": _now_iso(), "batch_id": batch_id, "client_reference": batch.get("client_reference"),
                   "code": CODES.get(status, 0), "operator_status_at": _now_iso(), "recipient": batch["to"][0],
                   "status": status, "type": "recipient_delivery_report_sms", "applied_originator": batch["from"],
                   "number_of_message_parts": 1}
        body = json.dumps(payload, separators=(",", ":")).encode()
        key = secret if secret is not None else self.plans[batch["_plan"]][1]
        headers = signed_headers(secret=key, body=body, timestamp=timestamp) if signed else {
            "Content-Type": "application/json"}
        return self._post(url or batch["callback_url"], data=body, headers=headers)

    def send_inbound(self, url: str, *, sender: str, to: str, body: str, msg_id: str | None = None,
                     secret: str | None = None, timestamp: int | None = None, signed: bool = True) -> int | None:
        payload = {"type": "mo_text", "id": msg_id or ulid(), "from": sender.lstrip("+"), "to": to.lstrip("+"),
                   "body": body, "received_at": _now_iso(), "operator_id": "20408"}
        raw = json.dumps(payload, separators=(",", ":")).encode()
        key = secret if secret is not None else next(iter(self.plans.values()))[1]
        headers = signed_headers(secret=key, body=raw, timestamp=timestamp) if signed else {"Content-Type": "application/json"}
        return self._post(url, data=raw, headers=headers)
