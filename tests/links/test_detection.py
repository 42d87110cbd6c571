"""URL detection against real bodies (sms/links/detection.py): what is a URL, where it ends."""
import pytest

from sms.links.detection import find_urls

CASES = [
    # (body, URLs found, in order)
    ("Your code is 482910", []),
    ("Reply STOP to opt out. Msg&data rates may apply.", []),
    ("Track your order: https://shop.example.com/orders/8812?ref=sms&utm_source=sms#status",
     ["https://shop.example.com/orders/8812?ref=sms&utm_source=sms#status"]),
    ("Your appointment is confirmed. Details: https://clinic.example.org/a/77.",
     ["https://clinic.example.org/a/77"]),
    ("Sale ends tonight!!! https://deals.example.com/now!", ["https://deals.example.com/now"]),
    ("Questions? Call us or visit https://help.example.com/faq?", ["https://help.example.com/faq"]),
    ("See https://example.com/a, https://example.com/b; and https://example.com/c: thanks",
     ["https://example.com/a", "https://example.com/b", "https://example.com/c"]),
    ("(more at https://example.com/info) Reply STOP to end", ["https://example.com/info"]),
    ("Wiki: https://en.wikipedia.org/wiki/Python_(programming_language) is great",
     ["https://en.wikipedia.org/wiki/Python_(programming_language)"]),
    ("(see https://en.wikipedia.org/wiki/Foo_(bar)).", ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
    ("[https://example.com/x] and \"https://example.com/y\" and 'https://example.com/z'",
     ["https://example.com/x", "https://example.com/y", "https://example.com/z"]),
    ("Ihr Termin: https://münchen.example.de/straße?q=ü bitte bestätigen",
     ["https://münchen.example.de/straße?q=ü"]),
    ("Paiement: https://xn--mnchen-3ya.de/pay?id=1 ✓", ["https://xn--mnchen-3ya.de/pay?id=1"]),
    ("already short: https://bit.ly/3xYzAbC, ok?", ["https://bit.ly/3xYzAbC"]),
    ("port and path: http://api.example.com:8443/v1/x/ done", ["http://api.example.com:8443/v1/x/"]),
    ("no scheme: www.example.com and example.com and me@example.com", []),
    ("other schemes: ftp://files.example.com/a mailto:a@example.com tel:+15551234567", []),
    ("Party time 🎉 https://party.example.com/🎈 see you", ["https://party.example.com/🎈"]),
    ("a lone scheme https:// is not a link", []),
]


@pytest.mark.parametrize("body,expected", CASES, ids=[c[0][:30] for c in CASES])
def test_urls_found_in_real_bodies(body, expected):
    found = find_urls(body)
    assert [f.url for f in found] == expected
    for f in found:  # spans point at the URL itself: the rest (punctuation included) stays in the body
        assert body[f.start:f.end] == f.url
