"""Destinations and prices: the country a number belongs to, its pumping range, and the price per segment.

- `country_for(e164)`: ISO 3166-1 alpha-2 of the number's region (libphonenumber). NANP numbers
  shared by several countries are told apart by area code (+1 876 → JM, +1 416 → CA). A number whose
  region libphonenumber cannot tell (e.g. the fictional +1 555 numbers) counts as its calling code's
  main country (+1 → US). Non-geographic codes (+800, +870, +881–883, +979) have no country: they
  answer "001", which is not an ISO code, so no org can allow them.
- `number_range(e164)`: the prefix range a number falls in for the pumping defence — the E.164 string
  without its last RANGE_SUFFIX_DIGITS digits (+1 415 555 0123 → +1415555, a block of 10,000 numbers),
  keeping at least the calling code and one more digit.
- `is_high_risk(e164)`: the number starts with a prefix in high_risk_ranges.csv.
- `unit_price(provider, country, overrides)`: USD per segment as a Decimal — the org's negotiated rate
  for the country, else prices.csv's (provider, country), else (provider, *), else twilio's row.

Data files are read once per process (they ship with the code); every amount is a Decimal, never a float.
"""
from __future__ import annotations

import csv
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

import phonenumbers

from sms.phones import parsed_e164

HERE = Path(__file__).resolve().parent
PRICES_CSV = HERE / "prices.csv"
HIGH_RISK_CSV = HERE / "high_risk_ranges.csv"
CURRENCY = "USD"
NON_GEOGRAPHIC = "001"
RANGE_SUFFIX_DIGITS = 4
FALLBACK_PROVIDER = "twilio"
PRICE_PLACES = Decimal("0.00001")  # prices are stored with 5 decimal places (Twilio reports 5)


def _rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(line for line in handle if line.strip() and not line.startswith("#")))


@lru_cache(maxsize=1)
def price_table() -> dict[tuple[str, str], Decimal]:
    table = {}
    for row in _rows(PRICES_CSV):
        table[(row["provider"].strip(), row["country"].strip().upper())] = Decimal(row["usd_per_segment"].strip())
    return table


@lru_cache(maxsize=1)
def high_risk_prefixes() -> dict[str, str]:
    return {row["prefix"].strip(): row["reason"].strip() for row in _rows(HIGH_RISK_CSV)}


@lru_cache(maxsize=4096)
def country_for(e164: str) -> str:
    number = parsed_e164(e164)
    region = phonenumbers.region_code_for_number(number)
    if not region or region == "ZZ":
        region = phonenumbers.region_code_for_country_code(number.country_code)
    return region if region and region != "ZZ" else NON_GEOGRAPHIC


def number_range(e164: str) -> str:
    code_len = len(str(parsed_e164(e164).country_code))
    keep = max(1 + code_len + 1, len(e164) - RANGE_SUFFIX_DIGITS)
    return e164[:keep]


def high_risk_reason(e164: str) -> str | None:
    prefixes = high_risk_prefixes()
    for end in range(len(e164), 1, -1):
        reason = prefixes.get(e164[:end])
        if reason is not None:
            return reason
    return None


def unit_price(*, provider: str, country: str, overrides: dict | None = None) -> Decimal:
    """USD per segment for a send through `provider` to `country`."""
    if overrides and country in overrides:
        return Decimal(str(overrides[country]))
    table = price_table()
    for key in ((provider, country), (provider, "*"), (FALLBACK_PROVIDER, country), (FALLBACK_PROVIDER, "*")):
        if key in table:
            return table[key]
    return Decimal("0")


def parse_amount(raw, *, name: str, places: int = 4, allow_zero: bool = True) -> Decimal:
    """A non-negative decimal amount from user input with at most `places` decimal places; ValueError
    with a sentence naming `name` otherwise. Floats are refused (money is never a float)."""
    if isinstance(raw, float):
        raise ValueError(f"{name} must be a decimal string, not a float.")
    try:
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise ValueError(f"{name} must be a decimal amount like 250.00, got {raw!r}.") from None
    if not value.is_finite():
        raise ValueError(f"{name} must be a finite amount, got {raw!r}.")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'at least 0' if allow_zero else 'more than 0'}, got {raw!r}.")
    if -value.as_tuple().exponent > places:
        raise ValueError(f"{name} takes at most {places} decimal places, got {raw!r}.")
    if value >= Decimal(10) ** 10:
        raise ValueError(f"{name} is too large, got {raw!r}.")
    return value


def amount_str(value: Decimal | None) -> str | None:
    """A Decimal as the API renders amounts: plain notation, no trailing zeros ("0.0083", "20", "0")."""
    if value is None:
        return None
    text = format(Decimal(value), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def valid_country_code(code: str) -> bool:
    """An ISO 3166-1 alpha-2 code libphonenumber knows a numbering plan for."""
    return isinstance(code, str) and len(code) == 2 and code.isalpha() and code.isupper() and \
        phonenumbers.country_code_for_region(code) != 0
