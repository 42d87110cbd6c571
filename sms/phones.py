"""Phone number normalisation to E.164 (pure functions, no Django).

Uses libphonenumber's *possible* check (length rules), not its *valid* check
(number-range rules): Twilio's magic test numbers (+15005550001…9) and the
fictional 555 numbers used everywhere in docs and tests (+15551234567) are not
"valid" to libphonenumber but must be accepted. Twilio itself rejects
unroutable numbers with 21211/21614, which the send path handles.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

__all__ = ["InvalidPhoneNumber", "MAX_RAW_LENGTH", "normalize_phone", "is_e164", "parsed_e164"]

MAX_RAW_LENGTH: Final = 32

# Digits (any script; libphonenumber maps them), one optional leading "+",
# and the usual separators. No letters (vanity numbers, "ext."), no "#"/"*".
_ALLOWED: Final = re.compile(r"^\+?[\d\s().\-/]+$")
_E164: Final = re.compile(r"^\+[1-9]\d{6,14}$")


class InvalidPhoneNumber(ValueError):
    """The input cannot be normalised to a possible E.164 number."""


def is_e164(value: str) -> bool:
    """Cheap syntactic check: ``+`` then 7–15 digits, no leading zero."""
    return isinstance(value, str) and bool(_E164.match(value))


def normalize_phone(raw: str, default_region: str = "US") -> str:
    """Return ``raw`` as E.164 (``+15551234567``) or raise :class:`InvalidPhoneNumber`.

    Accepts common human formats ("+1 (555) 123-4567", "555.123.4567",
    "011 44 20 7946 0958"); numbers without "+" are read in ``default_region``.
    Rejects non-strings, empty input, more than 32 characters, letters,
    numbers that are not *possible* for their country (wrong length, local-only
    like "555-1234"), and NANP numbers whose area code starts with 0 or 1.
    """
    if not isinstance(raw, str):
        raise InvalidPhoneNumber("Phone number must be a string.")
    text = raw.strip()
    if not text:
        raise InvalidPhoneNumber("Phone number is empty.")
    if len(text) > MAX_RAW_LENGTH:
        raise InvalidPhoneNumber(f"Phone number is longer than {MAX_RAW_LENGTH} characters.")
    if not _ALLOWED.match(text):
        raise InvalidPhoneNumber("Phone number may contain only digits, a leading '+', spaces and ()-./.")
    try:
        number = phonenumbers.parse(text, default_region)
    except NumberParseException as exc:
        raise InvalidPhoneNumber(f"Not a phone number: {exc}") from exc
    if number.extension:
        raise InvalidPhoneNumber("Phone number extensions are not supported.")
    if phonenumbers.is_possible_number_with_reason(number) != ValidationResult.IS_POSSIBLE:
        raise InvalidPhoneNumber("Not a possible phone number for its country.")
    national = phonenumbers.national_significant_number(number)
    if number.country_code == 1 and national[0] in "01":
        raise InvalidPhoneNumber("North American area codes cannot start with 0 or 1.")
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if not _E164.match(e164):
        raise InvalidPhoneNumber("Not a possible E.164 phone number.")
    if len(_recent) >= _RECENT_LIMIT:
        _recent.clear()
    _recent[e164] = number
    return e164


# The numbers normalize_phone parsed last, by their E.164 form: the send path then reads the destination's
# country, number range and price (sms/pricing) from the parse it already made — one parse per send, not two.
# Any other E.164 number is parsed once and kept (_parse_e164's LRU).
_RECENT_LIMIT: Final = 1024
_recent: dict[str, phonenumbers.PhoneNumber] = {}


def parsed_e164(e164: str) -> phonenumbers.PhoneNumber:
    """libphonenumber's parse of an E.164 number (callers only read it): normalize_phone's own when it produced
    the number recently, else a cached parse — the same country code and national number either way."""
    number = _recent.get(e164)
    return number if number is not None else _parse_e164(e164)


@lru_cache(maxsize=4096)
def _parse_e164(e164: str) -> phonenumbers.PhoneNumber:
    return phonenumbers.parse(e164, None)
