"""SMS encoding detection and segment counting (pure functions, no Django).

Rules (Twilio's, https://www.twilio.com/docs/glossary/what-sms-character-limit, after its message-segment-calculator):

* A body is **GSM-7** when every character is in the GSM 03.38 basic set
  (1 septet) or its extension table (ESC + char = 2 septets). Otherwise the
  whole body is **UCS-2**, counted in UTF-16 code units (characters outside
  the BMP, e.g. most emoji, take 2).
* One segment holds 160 septets / 70 code units. A concatenated message
  carries a 6-byte UDH per part, leaving 153 septets / 67 code units.
* An escape pair or a surrogate pair is never split across two parts, so
  parts are filled greedily; the count can exceed ``ceil(units / 153)``.
* The empty body counts as **one GSM-7 segment with 0 units** (an empty SMS
  still occupies one PDU). The public API requires 1..1600 chars anyway.

No Smart Encoding is applied: curly quotes etc. make the body UCS-2, which
is what Twilio bills when Smart Encoding is off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "GSM7",
    "UCS2",
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "SegmentInfo",
    "is_gsm7",
    "segment_info",
]

GSM7: Final = "GSM-7"
UCS2: Final = "UCS-2"

#: GSM 03.38 default alphabet, 1 septet each. The ESC position (0x1B) is left
#: out on purpose: a raw ESC in user text is not a printable character.
GSM7_BASIC: Final[frozenset[str]] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: GSM 03.38 extension table: ESC + char, 2 septets each.
GSM7_EXTENSION: Final[frozenset[str]] = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE: Final = 160
GSM7_MULTI: Final = 153
UCS2_SINGLE: Final = 70
UCS2_MULTI: Final = 67


@dataclass(frozen=True)
class SegmentInfo:
    """How a carrier would encode and split a body.

    ``units`` is the total number of septets (GSM-7) or UTF-16 code units
    (UCS-2); ``segments`` the number of SMS parts billed.
    """

    encoding: str
    segments: int
    units: int


def is_gsm7(body: str) -> bool:
    """True when every character of ``body`` fits the GSM-7 alphabet."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in body)


def _count(unit_sizes: list[int], single: int, multi: int) -> tuple[int, int]:
    """Return (segments, total units), filling parts greedily without splitting a character."""
    total = sum(unit_sizes)
    if total <= single:
        return 1, total
    segments, used = 1, 0
    for size in unit_sizes:
        if used + size > multi:
            segments += 1
            used = 0
        used += size
    return segments, total


def segment_info(body: str) -> SegmentInfo:
    """Detect the encoding of ``body`` and count its segments and units."""
    if is_gsm7(body):
        sizes = [2 if ch in GSM7_EXTENSION else 1 for ch in body]
        segments, units = _count(sizes, GSM7_SINGLE, GSM7_MULTI)
        return SegmentInfo(encoding=GSM7, segments=segments, units=units)
    sizes = [2 if ord(ch) > 0xFFFF else 1 for ch in body]
    segments, units = _count(sizes, UCS2_SINGLE, UCS2_MULTI)
    return SegmentInfo(encoding=UCS2, segments=segments, units=units)
