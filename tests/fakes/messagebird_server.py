"""Fake MessageBird (legacy REST, rest.messagebird.com) on 127.0.0.1, speaking its wire format.

- `POST /messages` (`Authorization: AccessKey <key>`, JSON `originator`, `recipients`, `body`,
  `reference`, `reportUrl`) → 201 message JSON (`id` 32 hex, `recipients.items[].status` `sent`);
  401 `{"errors":[{"code":2,…}]}` for an unknown key; 422 code 9 for a missing/invalid parameter.
- `GET /messages/{id}`, `GET /messages?recipient=…`, `GET /balance`.
- Status reports to the message's `reportUrl` (form POST, or GET with the query) and inbound messages
  (form POST), each signed as MessageBird does: `MessageBird-Signature-JWT`, an HS256 JWT keyed with the
  account's signing key, claims iss=MessageBird, nbf, exp = nbf + 60, jti, url_hash = sha256(URL as
  called), payload_hash = sha256(raw body) when there is a body.
- Fault injection as the fake Twilio (tests/fakes/provider_base.py).
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import urlencode

import jwt

from tests.fakes.provider_base import FakeProviderServer, new_id


def sign_jwt(*, signing_key: str, url: str, body: bytes, now: float | None = None) -> str:
    now = int(time.time() if now is None else now)
    claims = {"iss": "MessageBird", "nbf": now, "exp": now + 60, "jti": str(uuid.uuid4()),
              "url_hash": hashlib.sha256(url.encode()).hexdigest()}
    if body:
        claims["payload_hash"] = hashlib.sha256(body).hexdigest()
    return jwt.encode(claims, signing_key, algorithm="HS256")


def _now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


class FakeMessageBird(FakeProviderServer):
    name = "messagebird"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.keys: dict[str, str] = {}  # access key → signing key

    def add_account(self, access_key: str | None = None, signing_key: str | None = None) -> tuple[str, str]:
        access_key = access_key or "live_" + new_id()[:25]
        signing_key = signing_key or new_id() + new_id()
        with self._lock:
            self.keys[access_key] = signing_key
        return access_key, signing_key

    def _is_create(self, path: str) -> bool:
        return path == "/messages"

    def _error_body(self, status: int):
        code = {401: 2, 404: 20, 422: 9}.get(status, 99 if status >= 500 else 21)
        return {"errors": [{"code": code, "description": f"fake MessageBird error {status}", "parameter": None}]}

    def _route(self, h, method, path, query, body):
        auth = h.headers.get("Authorization") or ""
        key = auth[len("AccessKey "):] if auth.startswith("AccessKey ") else ""
        if key not in self.keys:
            return 401, {"errors": [{"code": 2, "description": "Request not allowed (incorrect access_key)",
                                     "parameter": "access_key"}]}
        if method == "POST" and path == "/messages":
            return self._create(key, body)
        if method == "GET" and path == "/balance":
            return 200, {"payment": "prepaid", "type": "euros", "amount": 42.5}
        if method == "GET" and path == "/messages":
            recipient = (query.get("recipient") or [""])[0]
            with self._lock:
                items = [m for m in self.messages.values()
                         if not recipient or str(m["recipients"]["items"][0]["recipient"]) == recipient]
            items = list(reversed(items))
            return 200, {"offset": 0, "limit": 100, "count": len(items), "totalCount": len(items), "items": items}
        if method == "GET" and path.startswith("/messages/"):
            msg = self.messages.get(path.rsplit("/", 1)[1])
            return (200, msg) if msg else (404, self._error_body(404))
        return 404, self._error_body(404)

    def _create(self, key: str, body: bytes):
        try:
            data = json.loads(body)
        except ValueError:
            return 422, self._error_body(422)
        recipients = data.get("recipients")
        if isinstance(recipients, str):
            recipients = recipients.split(",")
        if not data.get("originator") or not recipients or not data.get("body"):
            return 422, {"errors": [{"code": 9, "description": "no (correct) recipients found", "parameter": "recipient"}]}
        msg_id = new_id()
        now = _now_iso()
        msg = {"id": msg_id, "href": f"{self.base_url}/messages/{msg_id}", "direction": "mt", "type": "sms",
               "originator": data["originator"], "body": data["body"], "reference": data.get("reference"),
               "reportUrl": data.get("reportUrl"), "validity": None, "gateway": 10, "typeDetails": {},
               "datacoding": "plain", "mclass": 1, "scheduledDatetime": None, "createdDatetime": now,
               "recipients": {"totalCount": 1, "totalSentCount": 1, "totalDeliveredCount": 0,
                              "totalDeliveryFailedCount": 0,
                              "items": [{"recipient": int(str(recipients[0]).lstrip("+")), "status": "sent",
                                         "statusDatetime": now, "messagePartCount": 1}]},
               "_key": key}
        with self._lock:
            self.messages[msg_id] = msg
        if str(recipients[0]).lstrip("+") in self.blocked and msg["reportUrl"]:
            threading.Thread(target=lambda: self.deliver_status(msg_id, "delivery_failed", reason="opted out",
                                                                error_code="103"), daemon=True).start()
        elif self.auto_callbacks and msg["reportUrl"]:
            self._auto(self.deliver_status, msg_id)
        public = {k: v for k, v in msg.items() if not k.startswith("_")}
        return 201, public

    # callbacks ---------------------------------------------------------------------------------
    def deliver_status(self, msg_id: str, status: str, *, reason: str | None = None, error_code: str | None = None,
                       method: str = "POST", url: str | None = None, signing_key: str | None = None,
                       tamper: bool = False) -> int | None:
        """Call the message's reportUrl with a signed recipient status report."""
        msg = self.messages[msg_id]
        item = msg["recipients"]["items"][0]
        fields = {"id": msg_id, "reference": msg.get("reference") or "", "recipient": str(item["recipient"]),
                  "status": status, "statusDatetime": _now_iso(),
                  "statusReason": reason or {"delivered": "successfully delivered", "sent": "pending DLR",
                                             "delivery_failed": "generic delivery failure",
                                             "expired": "expired"}.get(status, ""),
                  "statusErrorCode": error_code or "", "mccmnc": "20408", "price[amount]": "0.07",
                  "price[currency]": "EUR", "messagePartCount": "1"}
        url = url or msg["reportUrl"]
        key = signing_key if signing_key is not None else self.keys[msg["_key"]]
        item["status"] = status
        if method == "GET":
            full = f"{url}{'&' if '?' in url else '?'}{urlencode(fields)}"
            headers = {"MessageBird-Signature-JWT": sign_jwt(signing_key=key, url=full, body=b"")}
            return self._post(full, headers=headers, method="GET")
        body = urlencode(fields).encode()
        token = sign_jwt(signing_key=key, url=url, body=body)
        if tamper:
            body = body.replace(b"status=", b"status=x")
        return self._post(url, data=body, headers={"MessageBird-Signature-JWT": token,
                                                   "Content-Type": "application/x-www-form-urlencoded"})

    def send_inbound(self, url: str, *, originator: str, recipient: str, body: str, msg_id: str | None = None,
                     access_key: str | None = None, signing_key: str | None = None, signed: bool = True) -> int | None:
        """An inbound SMS (MO) forwarded to `url`, form-encoded and signed like MessageBird's."""
        key = signing_key or self.keys[access_key or next(iter(self.keys))]
        fields = {"id": msg_id or new_id(), "originator": originator.lstrip("+"), "recipient": recipient.lstrip("+"),
                  "body": body, "createdDatetime": _now_iso()}
        raw = urlencode(fields).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if signed:
            headers["MessageBird-Signature-JWT"] = sign_jwt(signing_key=key, url=url, body=raw)
        return self._post(url, data=raw, headers=headers)
