"""Twilio adapter: the official `twilio` SDK, base URL from TWILIO_API_BASE_URL.

Translation only: OutboundSms → `POST /2010-04-01/Accounts/{AC}/Messages.json` (To, From, Body,
StatusCallback), the response → SendOutcome, and every failure → one of the neutral provider errors,
classified here (ERROR_MAP first, then the HTTP status):

- Transient (nothing was sent, safe to retry): 429 / 20429 (Twilio never processed the request),
  502/503/504 (gateway or service unavailable before processing), 21611 (From queue full), and
  connection errors raised before the request reached Twilio (refused, DNS, connect timeout).
  `retry_after` comes from the `Retry-After` header when Twilio sends one.
- Permanent: every other 4xx with its Twilio code; 21610 carries `recipient_opted_out`.
- Auth: 401 / 20003.
- Ambiguous (Twilio may have created the message): a read timeout or a dropped connection after the
  request was sent, a 500 or other 5xx, or a 2xx body that is not a Message JSON.

One pooled HTTP client (`_HttpClient`, the SDK's transport on urllib3) is shared by every tenant's `Client`
(auth is per request).
The auth token is never logged or put in an exception message.
"""
import base64
import json
import logging
import threading
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit

import requests
import urllib3
from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, NameResolutionError

from sms.providers.base import (
    UNKNOWN,
    InboundSms,
    OutboundSms,
    ProviderAmbiguousError,
    ProviderAuthError,
    ProviderError,
    ProviderPermanentError,
    ProviderTransientError,
    SendOutcome,
    SmsProvider,
    StatusUpdate,
)
from sms.statuses import SendStatus

# Twilio MessageStatus → our status. https://www.twilio.com/docs/messaging/api/message-resource#message-status-values
STATUS_MAP = {
    "accepted": SendStatus.QUEUED,
    "scheduled": SendStatus.QUEUED,
    "queued": SendStatus.QUEUED,
    "sending": SendStatus.SENDING,
    "sent": SendStatus.SENT,
    "delivered": SendStatus.DELIVERED,
    "read": SendStatus.DELIVERED,
    "undelivered": SendStatus.UNDELIVERED,
    "failed": SendStatus.FAILED,
    "canceled": SendStatus.FAILED,
}

# 21610: "Attempt to send to unsubscribed recipient" — the recipient opted out at the carrier/Twilio.
OPTED_OUT_CODES = frozenset({"21610"})

TRANSIENT, PERMANENT, AUTH, AMBIGUOUS = "transient", "permanent", "auth", "ambiguous"
# Twilio error code → class (https://www.twilio.com/docs/api/errors). Codes not listed fall back on the HTTP status.
ERROR_MAP = {
    "20003": AUTH,        # authentication failed
    "20429": TRANSIENT,   # too many concurrent requests: never processed
    "21611": TRANSIENT,   # From queue holds 10 h of messages: later, at a lower rate
    "20404": PERMANENT,   # resource not found (wrong account path)
    "21211": PERMANENT,   # invalid To
    "21212": PERMANENT,   # invalid From
    "21408": PERMANENT,   # geo permission not enabled for the region
    "21606": PERMANENT,   # From not an SMS-capable number of this account
    "21608": PERMANENT,   # trial account, To not verified
    "21610": PERMANENT,   # recipient replied STOP (recipient_opted_out)
    "21612": PERMANENT,   # cannot route From → To
    "21614": PERMANENT,   # To not SMS-capable
    "21617": PERMANENT,   # body over 1600 characters
    "21635": PERMANENT,   # To is a landline
}
TRANSIENT_HTTP_STATUSES = frozenset({429, 502, 503, 504})
QUEUE_FULL_RETRY_AFTER = 60.0  # 21611 carries no Retry-After; back off at least a minute

_local = threading.local()
# The SDK logs every request line (recipient numbers included) at INFO; keep only its warnings.
# SmsProvider.send logs one structured line per send instead.
_sdk_logger = logging.getLogger("sms.providers.twilio.sdk")
_sdk_logger.setLevel(logging.WARNING)
_http_client = None
_http_client_lock = threading.Lock()


class _HttpClient(HttpClient):
    """The SDK's HTTP transport on urllib3 directly — the SDK's documented extension point (a custom
    `twilio.http.HttpClient`; the SDK still builds every request and parses every answer).

    The wire request is TwilioHttpClient's: the SDK's headers, HTTP Basic auth, the query and the form body
    encoded as requests encodes them (lists repeated, None values dropped), no retry, no redirect, the same
    proxy and CA-bundle settings from the environment (read once per origin). Transport errors are raised as
    the `requests` exceptions TwilioHttpClient raised, so `_connection_error` classifies them unchanged.
    Why: requests' per-call machinery (prepare_request, setting merges, environment lookups) was about a
    third of a dispatch's CPU in the worker (issue #14, target 2). It also remembers, per thread, the last
    response's headers (for Retry-After)."""

    def __init__(self, *, timeout: float | None, logger: logging.Logger):
        super().__init__(logger, False, timeout)
        self._managers: dict[str, urllib3.PoolManager] = {}
        self._lock = threading.Lock()

    def _manager(self, url: str) -> urllib3.PoolManager:
        origin = urlsplit(url)._replace(path="", query="", fragment="").geturl()
        manager = self._managers.get(origin)
        if manager is None:
            with self._lock:
                manager = self._managers.get(origin)
                if manager is None:
                    env = requests.Session().merge_environment_settings(origin, {}, None, None, None)
                    verify = env.get("verify")
                    tls = {"cert_reqs": "CERT_REQUIRED",
                           "ca_certs": verify if isinstance(verify, str) else requests.utils.DEFAULT_CA_BUNDLE_PATH}
                    if verify is False:
                        tls = {"cert_reqs": "CERT_NONE"}
                    proxy = requests.utils.select_proxy(origin, env.get("proxies") or {})
                    pool = {"maxsize": 32, "block": False, "retries": False, **tls}
                    manager = urllib3.ProxyManager(proxy, **pool) if proxy else urllib3.PoolManager(**pool)
                    self._managers[origin] = manager
        return manager

    def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None,
                allow_redirects=False):
        if timeout is None:
            timeout = self.timeout
        elif timeout <= 0:
            raise ValueError(timeout)
        _local.last_headers = {}
        headers = dict(headers or {})
        if params:
            url = f"{url}{'&' if urlsplit(url).query else '?'}{_form(params)}"
        body = None
        if data is not None:
            if headers.get("Content-Type") in ("application/json", "application/scim+json"):
                body = json.dumps(data).encode()
            elif data:
                body = _form(data).encode()
                headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        headers.setdefault("Accept-Encoding", "gzip, deflate")  # as requests asks; urllib3 decodes the answer
        if auth:
            headers["Authorization"] = "Basic " + base64.b64encode(
                f"{auth[0]}:{auth[1]}".encode("latin1")).decode("ascii")
        try:
            response = self._manager(url).request(
                method.upper(), url, body=body, headers=headers, redirect=allow_redirects, retries=False,
                timeout=urllib3.Timeout(connect=timeout, read=timeout) if timeout else urllib3.Timeout(None))
        except urllib3.exceptions.HTTPError as exc:
            raise _as_requests_error(exc) from exc
        text = _text(response)
        _local.last_headers = dict(response.headers)
        self._test_only_last_response = Response(response.status, text, response.headers)
        return self._test_only_last_response


def _form(values) -> str:
    """A dict as requests form-encodes it: a list or tuple value repeats its key, None values are left out."""
    pairs = []
    for key, value in values.items():
        for item in value if isinstance(value, (list, tuple)) else (value,):
            if item is not None:
                pairs.append((key, item))
    return urlencode(pairs)


def _text(response) -> str:
    """The body as requests' `response.text` reads it: the Content-Type's charset (requests' own rule), else UTF-8."""
    encoding = requests.utils.get_encoding_from_headers(response.headers) or "utf-8"
    try:
        return response.data.decode(encoding, "replace")
    except LookupError:  # a charset Python does not know
        return response.data.decode("utf-8", "replace")


def _as_requests_error(exc: urllib3.exceptions.HTTPError) -> requests.RequestException:
    """urllib3's error as the requests exception TwilioHttpClient raised for it (requests' HTTPAdapter.send)."""
    errors = urllib3.exceptions
    if isinstance(exc, errors.NewConnectionError):  # refused, DNS: before the request left
        return requests.ConnectionError(exc)
    if isinstance(exc, errors.ConnectTimeoutError):
        return requests.ConnectTimeout(exc)
    if isinstance(exc, errors.ReadTimeoutError):
        return requests.ReadTimeout(exc)
    if isinstance(exc, errors.ProxyError):
        return requests.exceptions.ProxyError(exc)
    if isinstance(exc, errors.SSLError):
        return requests.exceptions.SSLError(exc)
    return requests.ConnectionError(exc)  # the connection dropped after the request was sent, …


def shared_http_client() -> HttpClient:
    """One pooled HTTP client per process (created lazily, so each forked worker gets its own)."""
    global _http_client
    with _http_client_lock:
        if _http_client is None or _http_client.timeout != settings.TWILIO_HTTP_TIMEOUT:
            _http_client = _HttpClient(timeout=settings.TWILIO_HTTP_TIMEOUT, logger=_sdk_logger)
        return _http_client


def _last_header(name: str) -> str | None:
    headers = getattr(_local, "last_headers", None) or {}
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def _retry_after() -> float | None:
    value = _last_header("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP-date Retry-After: ignore it, the backoff still applies


def classify_rest_error(*, http_status: int | None, code) -> str:
    """TRANSIENT / PERMANENT / AUTH / AMBIGUOUS for a Twilio error response."""
    kind = ERROR_MAP.get(str(code or ""))
    if kind:
        return kind
    if http_status == 401:
        return AUTH
    if http_status in TRANSIENT_HTTP_STATUSES:
        return TRANSIENT
    if http_status is not None and http_status >= 500:
        return AMBIGUOUS
    return PERMANENT


def _rest_error(exc: TwilioRestException) -> ProviderError:
    code = str(exc.code or exc.status or "")
    message = (exc.msg or "").removeprefix("Unable to create record: ").removeprefix("Unable to fetch record: ")
    kind = classify_rest_error(http_status=exc.status, code=exc.code)
    if kind == AUTH:
        return ProviderAuthError(message or "Twilio refused the credentials.", code=code, http_status=exc.status)
    if kind == TRANSIENT:
        retry_after = _retry_after()
        if retry_after is None and code == "21611":
            retry_after = QUEUE_FULL_RETRY_AFTER
        return ProviderTransientError(message, code=code, http_status=exc.status, retry_after=retry_after)
    if kind == AMBIGUOUS:
        return ProviderAmbiguousError(message or f"Twilio answered {exc.status}", code=code, http_status=exc.status)
    return ProviderPermanentError(message, code=code, http_status=exc.status,
                                  recipient_opted_out=code in OPTED_OUT_CODES)


def _connection_error(exc: requests.RequestException) -> ProviderError:
    """Before the request reached Twilio → transient; after it may have → ambiguous."""
    if isinstance(exc, requests.ConnectTimeout):
        return ProviderTransientError("connect timeout", code="connect_timeout")
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)  # MaxRetryError(reason=…)
        if isinstance(reason, (NewConnectionError, ConnectTimeoutError, NameResolutionError)):
            return ProviderTransientError("could not connect to Twilio", code="connect_error")
        return ProviderAmbiguousError("connection lost after the request was sent", code="connection_lost")
    if isinstance(exc, requests.Timeout):  # ReadTimeout: Twilio had the request
        return ProviderAmbiguousError("read timeout after the request was sent", code="read_timeout")
    return ProviderAmbiguousError(f"HTTP error {exc.__class__.__name__}", code="http_error")


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class TwilioProvider(SmsProvider):
    name = "twilio"
    display_name = "Twilio"
    secret_fields = ("auth_token",)
    replies_in_response = True  # TwiML <Message> in the webhook's answer

    def __init__(self, *, account_sid: str, auth_token: str):
        self.account_sid = account_sid
        self._auth_token = auth_token

    @classmethod
    def from_account(cls, account) -> "TwilioProvider":
        return cls(account_sid=account.account_sid, auth_token=account.auth_token())

    def status_callback_url(self, *, base_url: str, org_id, send_id) -> str:
        """StatusCallback carries our send id (`?send_id=`), so a callback that overtakes the worker (before
        the provider id is stored) is still applied; Twilio signs the URL with its query string."""
        url = f"{base_url}/api/v1/sms/webhooks/twilio/{org_id}/status"
        return f"{url}?send_id={send_id}" if send_id else url

    def test_connection(self) -> tuple[bool, str]:
        from sms.providers import twilio_account

        try:
            info = twilio_account.fetch_account(account_sid=self.account_sid, auth_token=self._auth_token)
        except twilio_account.TwilioAccountError as exc:
            return False, exc.message
        name = f"“{info.friendly_name}” " if info.friendly_name else ""
        if info.status and info.status != "active":
            return False, (f"Connected, but the Twilio account {name}({self.account_sid}) is {info.status}; "
                           f"it cannot send messages.")
        return True, f"Connected to Twilio account {name}({self.account_sid}), status {info.status or 'active'}."

    def __repr__(self) -> str:  # never show the token
        return f"TwilioProvider(account_sid={self.account_sid!r})"

    # --- sending ------------------------------------------------------------------------------
    def _client(self) -> Client:
        # A non-empty `environment` keeps the SDK from reading TWILIO_* variables (region/edge rewrites).
        client = Client(self.account_sid, self._auth_token, environment={"_": ""},
                        http_client=shared_http_client())
        client.api.base_url = settings.TWILIO_API_BASE_URL
        return client

    def _send(self, message: OutboundSms) -> SendOutcome:
        """POST Messages.json; 201 → SendOutcome (Twilio's `queued` is kept as our `queued`)."""
        kwargs = {"to": message.to, "from_": message.from_number, "body": message.body}
        if message.status_callback_url:
            kwargs["status_callback"] = message.status_callback_url
        try:
            created = self._client().messages.create(**kwargs)
        except TwilioRestException as exc:
            raise _rest_error(exc) from exc
        except requests.RequestException as exc:
            raise _connection_error(exc) from exc
        except ValueError as exc:  # a 2xx whose body is not JSON: Twilio may have created the message
            raise ProviderAmbiguousError("Twilio answered 2xx with an unreadable body", code="bad_response") from exc
        except TwilioException as exc:  # RFC 9457 errors (TwilioServiceException) and other SDK errors
            status = getattr(exc, "status", None)
            raise _rest_error(TwilioRestException(status or 500, "", str(exc), getattr(exc, "code", None))) from exc
        if not created.sid:
            raise ProviderAmbiguousError("Twilio answered 2xx without a message sid", code="bad_response")
        return self._outcome(created.sid, created.status, created.num_segments, {
            "sid": created.sid, "status": created.status, "to": created.to, "body": created.body,
            "num_segments": created.num_segments, "error_code": created.error_code,
            "price": created.price, "price_unit": created.price_unit,
            "date_created": created.date_created.isoformat() if created.date_created else None,
        })

    @staticmethod
    def _outcome(sid, status, num_segments, raw) -> SendOutcome:
        segments = _int(num_segments)
        return SendOutcome(provider_message_id=sid, status=STATUS_MAP.get((status or "").lower(), UNKNOWN),
                           segments=segments if segments else None, raw=raw)

    def fetch_status(self, provider_message_id: str) -> SendOutcome | None:
        """`GET Messages/{sid}.json`: one request for one message (not a list by recipient)."""
        try:
            msg = self._client().messages(provider_message_id).fetch()
        except TwilioRestException as exc:
            if exc.status == 404:
                return None
            error = _rest_error(exc)
            if isinstance(error, ProviderAmbiguousError):  # a read cannot be ambiguous: just retry later
                error = ProviderTransientError(error.message, code=error.code, http_status=exc.status)
            raise error from exc
        except requests.RequestException as exc:
            raise ProviderTransientError(f"status query failed: {exc.__class__.__name__}", code="connect_error") from exc
        return self._outcome(msg.sid, msg.status, msg.num_segments, {
            "sid": msg.sid, "status": msg.status, "error_code": msg.error_code,
            "price": msg.price, "price_unit": msg.price_unit,
            "date_sent": msg.date_sent.isoformat() if msg.date_sent else None,
            "date_updated": msg.date_updated.isoformat() if msg.date_updated else None,
        })

    def find_sent(self, *, to: str, since: datetime, body: str | None = None) -> list[SendOutcome]:
        """`GET Messages.json?To=…&DateSent>=…`, newest first, keeping messages created since `since`
        (and with exactly `body`, when given). Raises the neutral provider errors."""
        try:
            found = self._client().messages.list(to=to, date_sent_after=since, limit=200, page_size=200)
        except TwilioRestException as exc:
            raise _rest_error(exc) from exc
        except requests.RequestException as exc:
            raise ProviderTransientError(f"reconciliation query failed: {exc.__class__.__name__}",
                                         code="connect_error") from exc
        except TwilioException as exc:
            # List calls raise a bare TwilioException("Unable to fetch page", response).
            response = exc.args[1] if len(exc.args) > 1 else None
            status = getattr(response, "status_code", None)
            if status is None:
                raise ProviderTransientError("reconciliation query failed", code="bad_response") from exc
            try:
                code = json.loads(response.text or "").get("code")
            except (ValueError, AttributeError):
                code = None
            error = _rest_error(TwilioRestException(status, "", "Unable to list messages", code))
            if isinstance(error, ProviderAmbiguousError):  # a read cannot be ambiguous: just retry later
                error = ProviderTransientError(error.message, code=error.code, http_status=status)
            raise error from exc
        except ValueError as exc:
            raise ProviderTransientError("reconciliation query failed", code="bad_response") from exc
        cutoff = since - timedelta(seconds=1)  # Twilio dates have second precision
        outcomes = []
        for msg in found:
            created = msg.date_created or msg.date_sent
            if created is not None and created < cutoff:
                continue
            if body is not None and (msg.body or "") != body:
                continue
            outcomes.append(self._outcome(msg.sid, msg.status, msg.num_segments, {
                "sid": msg.sid, "status": msg.status, "to": msg.to, "body": msg.body,
                "error_code": msg.error_code, "date_created": created.isoformat() if created else None,
                "price": msg.price, "price_unit": msg.price_unit,
                # The provider's own times: a send recovered by reconciliation records these, not ours.
                "date_sent": msg.date_sent.isoformat() if msg.date_sent else None,
                "date_updated": msg.date_updated.isoformat() if msg.date_updated else None,
            }))
        return outcomes

    # --- webhooks -------------------------------------------------------------------------
    def verify_webhook(self, *, url: str, params, headers) -> bool:
        """X-Twilio-Signature over the public URL and every POST parameter, with the SDK validator."""
        signature = headers.get("X-Twilio-Signature", "")
        if not signature:
            return False
        return RequestValidator(self._auth_token).validate(url, params, signature)

    def account_matches(self, params) -> bool:
        """The signed AccountSid is this org's account (a token shared by two accounts cannot cross over)."""
        return params.get("AccountSid", "") == self.account_sid

    def parse_inbound(self, params) -> InboundSms:
        return InboundSms(
            message_id=params.get("MessageSid") or params.get("SmsSid") or "",
            account_id=params.get("AccountSid", ""),
            from_number=params.get("From", ""),
            to_number=params.get("To", ""),
            body=params.get("Body", ""),
            raw=dict(params.items()),
        )

    def parse_status(self, params) -> StatusUpdate:
        raw_status = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
        error_code = params.get("ErrorCode", "") or ""
        return StatusUpdate(
            provider_message_id=params.get("MessageSid") or params.get("SmsSid") or "",
            status=STATUS_MAP.get(raw_status, UNKNOWN),
            account_id=params.get("AccountSid", ""),
            error_code=error_code,
            error_message=params.get("ErrorMessage", "") or "",
            recipient_opted_out=error_code in OPTED_OUT_CODES,
            raw=dict(params.items()),
            provider=self.name,
            recipient=params.get("To", "") or "",
            price=params.get("Price", "") or "", price_unit=params.get("PriceUnit", "") or "",
        )


def twilio_api_base_url() -> str:
    return settings.TWILIO_API_BASE_URL
