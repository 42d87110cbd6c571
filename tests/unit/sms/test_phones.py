"""sms.phones: E.164 normalisation."""

import pytest

from sms.phones import InvalidPhoneNumber, is_e164, normalize_phone


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
