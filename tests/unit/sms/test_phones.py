"""sms.phones: E.164 normalisation."""

import pytest

import phonenumbers

from sms import phones
from sms.phones import InvalidPhoneNumber, is_e164, normalize_phone, parsed_e164


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+1 (555) 123-4567", "+15551234567"),
        ("+15551234567", "+15551234567"),
        ("(555) 123-4567", "+15551234567"),
        ("555.123.4567", "+15551234567"),
        ("1-555-123-4567", "+15551234567"),
        ("  +1 415 555 0100  ", "+14155550100"),
        ("+44 20 7946 0958", "+442079460958"),
        ("011 44 20 7946 0958", "+442079460958"),
        ("４１５５５５０１００", "+14155550100"),  # full-width digits
        # Twilio magic numbers and 555-01xx fiction numbers: possible, not "valid"
        ("+15005550001", "+15005550001"),
        ("+15005550006", "+15005550006"),
        ("+15005550009", "+15005550009"),
        ("+15555550123", "+15555550123"),
        ("+14155550199", "+14155550199"),
    ],
)
def test_normalizes_to_e164(raw, expected):
    assert normalize_phone(raw) == expected
    assert is_e164(expected)


def test_default_region_is_used_for_national_input():
    assert normalize_phone("020 7946 0958", default_region="GB") == "+442079460958"
    assert normalize_phone("+1 555 123 4567", default_region="GB") == "+15551234567"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "+",
        "abc",
        "1-800-FLOWERS",  # letters (vanity)
        "+1 555 123 4567 ext. 12",
        "555-123-4567 x12",
        "555-1234",  # local-only, no area code
        "+1555123456",  # too short
        "+155512345678",  # too long
        "+123",
        "+10005551234",  # NANP area code cannot start with 0/1
        "+11235551234",
        "+1" + "2" * 40,  # > 32 chars
        "1+5551234567",  # '+' not leading
        "+1 555 123 4567#",
        "++15551234567",
    ],
)
def test_rejects_invalid_input(raw):
    with pytest.raises(InvalidPhoneNumber):
        normalize_phone(raw)


@pytest.mark.parametrize("raw", [None, 15551234567, b"+15551234567", ["+15551234567"]])
def test_rejects_non_strings(raw):
    with pytest.raises(InvalidPhoneNumber):
        normalize_phone(raw)  # type: ignore[arg-type]


def test_invalid_phone_number_is_a_value_error():
    assert issubclass(InvalidPhoneNumber, ValueError)


def test_rejects_unknown_region_for_national_input():
    with pytest.raises(InvalidPhoneNumber):
        normalize_phone("5551234567", default_region="ZZ")


def test_is_e164():
    assert is_e164("+15551234567")
    assert not is_e164("15551234567")
    assert not is_e164("+05551234567")
    assert not is_e164(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", ["+1 (555) 123-4567", "555.123.4567", "011 44 20 7946 0958", "+39 06 1234 5678",
                                 "+225 07 1234 5678", "+800 1234 5678"])
def test_parsed_e164_reuses_the_normalising_parse_and_equals_a_fresh_one(raw):
    e164 = normalize_phone(raw)
    reused = parsed_e164(e164)
    assert reused is phones._recent[e164]  # the parse normalize_phone made: none repeated
    fresh = phonenumbers.parse(e164, None)
    assert (reused.country_code, reused.national_number, reused.italian_leading_zero or False,
            reused.number_of_leading_zeros or 1) == (fresh.country_code, fresh.national_number,
                                                    fresh.italian_leading_zero or False, fresh.number_of_leading_zeros or 1)
    assert phonenumbers.format_number(reused, phonenumbers.PhoneNumberFormat.E164) == e164
    assert phonenumbers.region_code_for_number(reused) == phonenumbers.region_code_for_number(fresh)


def test_parsed_e164_parses_numbers_it_has_not_seen_and_the_memory_stays_bounded():
    assert parsed_e164("+447946095800").country_code == 44
    for i in range(phones._RECENT_LIMIT + 10):
        normalize_phone(f"+1415555{i:04d}")
    assert len(phones._recent) <= phones._RECENT_LIMIT
