"""Twilio account checks for the dashboard: fetch the account, list the numbers it owns.

Translation only (no rules): the official SDK, base URL from TWILIO_API_BASE_URL, and every failure
turned into one plain-words `TwilioAccountError`. Neither the auth token nor the request headers
appear in any message this module produces.
"""
import json
from dataclasses import dataclass

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

NUMBERS_LIMIT = 200


class TwilioAccountError(Exception):
    """A check against Twilio failed; `message` is a sentence fit to show an operator."""

    def __init__(self, message: str, *, code: int | None = None, http_status: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status


@dataclass(frozen=True)
class AccountInfo:
    sid: str
    friendly_name: str
    status: str  # active | suspended | closed
    type: str  # Trial | Full


def _client(account_sid: str, auth_token: str) -> Client:
    # A non-empty `environment` keeps the SDK from reading TWILIO_* variables (region/edge rewrites).
    client = Client(account_sid, auth_token, environment={"_": ""},
                    http_client=TwilioHttpClient(timeout=settings.TWILIO_HTTP_TIMEOUT))
    client.api.base_url = settings.TWILIO_API_BASE_URL
    return client


def _page_error(exc: TwilioException) -> TwilioRestException | None:
    """List calls raise a bare TwilioException("Unable to fetch page", response); recover status and code."""
    response = exc.args[1] if len(exc.args) > 1 else None
    status = getattr(response, "status_code", None)
    if status is None:
        return None
    code, message = None, ""
    try:
        body = json.loads(response.text or "")
        code, message = body.get("code"), body.get("message") or ""
    except (ValueError, AttributeError):
        pass
    return TwilioRestException(status, "", msg=message, code=code)


def _plain(exc: Exception) -> TwilioAccountError:
    """Twilio's error, in words an operator can act on."""
    if isinstance(exc, TwilioException) and not isinstance(exc, TwilioRestException):
        exc = _page_error(exc) or exc
    if isinstance(exc, TwilioRestException):
        code, status = exc.code, exc.status
        if code == 20003 or status == 401:
            text = ("Twilio rejected the credentials (error 20003: authentication failed). "
                    "Check the Account SID and Auth Token in the Twilio Console.")
        elif code == 20404 or status == 404:
            text = "Twilio has no account with this Account SID (error 20404: not found)."
        elif status == 403:
            text = ("Twilio refused access to this account (HTTP 403). Test credentials cannot read the "
                    "account or its numbers; use the live Account SID and Auth Token.")
        elif code == 20429 or status == 429:
            text = "Twilio is busy (error 20429: too many concurrent requests). Try again in a moment."
        elif status and status >= 500:
            text = f"Twilio answered with a server error (HTTP {status}). Try again later."
        else:
            detail = (getattr(exc, "msg", "") or "").strip()
            text = f"Twilio refused the request (HTTP {status}{f', error {code}' if code else ''}): {detail}"
        return TwilioAccountError(text, code=code, http_status=status)
    if isinstance(exc, requests.Timeout):
        return TwilioAccountError(f"Twilio did not answer within {settings.TWILIO_HTTP_TIMEOUT:g} seconds. "
                                  "Try again later.")
    if isinstance(exc, requests.ConnectionError):
        return TwilioAccountError(f"Could not connect to Twilio at {settings.TWILIO_API_BASE_URL}. "
                                  "Check the network and try again.")
    if isinstance(exc, ValueError):
        return TwilioAccountError("Twilio's answer could not be read (not the expected JSON). Try again later.")
    return TwilioAccountError("Twilio could not be reached: " + type(exc).__name__ + ".")


_ERRORS = (TwilioException, requests.RequestException, ValueError)


def fetch_account(*, account_sid: str, auth_token: str) -> AccountInfo:
    """GET /2010-04-01/Accounts/{sid}.json with the given credentials."""
    try:
        account = _client(account_sid, auth_token).api.v2010.accounts(account_sid).fetch()
    except _ERRORS as exc:
        raise _plain(exc) from None
    return AccountInfo(sid=account.sid or account_sid, friendly_name=account.friendly_name or "",
                       status=account.status or "", type=account.type or "")


def list_sms_numbers(*, account_sid: str, auth_token: str, limit: int = NUMBERS_LIMIT) -> list[str]:
    """The E.164 numbers the account owns that can send SMS (GET …/IncomingPhoneNumbers.json)."""
    try:
        numbers = _client(account_sid, auth_token).incoming_phone_numbers.list(limit=limit)
    except _ERRORS as exc:
        raise _plain(exc) from None
    result = []
    for number in numbers:
        capabilities = number.capabilities or {}
        sms_capable = capabilities.get("sms", capabilities.get("SMS", True))
        if number.phone_number and sms_capable:
            result.append(number.phone_number)
    return sorted(set(result))
