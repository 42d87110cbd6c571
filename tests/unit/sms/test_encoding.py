"""sms.encoding: GSM-7 / UCS-2 detection and segment counts (Twilio's segment rules, sms/encoding.py)."""

import pytest

from sms.encoding import GSM7, UCS2, SegmentInfo, is_gsm7, segment_info

EURO = "\u20ac"
GRINNING = "\U0001F600"


@pytest.mark.parametrize(
    ("body", "encoding", "segments", "units"),
    [
        # worked counts from Twilio's segment calculator
        ("a" * 160, GSM7, 1, 160),
        ("a" * 161, GSM7, 2, 161),
        ("a" * 306, GSM7, 2, 306),
        ("a" * 307, GSM7, 3, 307),
        ("a" * 159 + EURO, GSM7, 2, 161),
        ("{" * 80, GSM7, 1, 160),
        ("a" * 152 + EURO + "a" * 10, GSM7, 2, 164),
        ("ж" * 70, UCS2, 1, 70),
        ("ж" * 71, UCS2, 2, 71),
        ("a" * 69 + GRINNING, UCS2, 2, 71),
        ("a" * 150 + "\u2019", UCS2, 3, 151),
        ("a" * 1600, GSM7, 11, 1600),
    ],
)
def test_worked_counts_from_twilio_md(body, encoding, segments, units):
    assert segment_info(body) == SegmentInfo(encoding=encoding, segments=segments, units=units)


def test_escape_pair_is_never_split():
    # 153 septets would fit exactly if '€' could be split: 152 + ESC | € ...
    info = segment_info("a" * 152 + EURO + "a" * 152)
    assert info.units == 306
    assert info.segments == 3  # ceil(306/153) would be 2


def test_surrogate_pair_is_never_split():
    info = segment_info("a" * 66 + GRINNING + "a" * 66)
    assert (info.encoding, info.units) == (UCS2, 134)
    assert info.segments == 3  # ceil(134/67) would be 2


@pytest.mark.parametrize("ch", list("\f^{}\\[~]|") + [EURO])
def test_extension_characters_count_two_septets(ch):
    assert segment_info(ch) == SegmentInfo(GSM7, 1, 2)


@pytest.mark.parametrize("ch", list("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà\n\r"))
def test_basic_set_specials_are_gsm7(ch):
    assert segment_info(ch) == SegmentInfo(GSM7, 1, 1)


@pytest.mark.parametrize("ch", ["`", "\u2019", "\u201c", "ç", "á", "\u00a0", "\x1b", "\t", "—"])
def test_non_gsm_characters_force_ucs2(ch):
    assert not is_gsm7(ch)
    assert segment_info("Hello " + ch).encoding == UCS2


def test_ucs2_boundaries():
    assert segment_info("ж" * 134) == SegmentInfo(UCS2, 2, 134)
    assert segment_info("ж" * 135) == SegmentInfo(UCS2, 3, 135)
    assert segment_info(GRINNING * 35) == SegmentInfo(UCS2, 1, 70)
    assert segment_info(GRINNING * 36).segments == 2


def test_empty_body_is_one_gsm7_segment():
    assert segment_info("") == SegmentInfo(GSM7, 1, 0)


def test_segment_info_is_frozen():
    info = segment_info("hi")
    with pytest.raises(AttributeError):
        info.segments = 5  # type: ignore[misc]
