"""Finding the URLs of a body.

linkify-it-py (the Python port of markdown-it's linkify-it) does the hard part: scheme-led links only
(no fuzzy `www.` / bare-domain / e-mail matches), balanced parentheses and brackets (`…/Foo_(bar))`),
quotes, IDNs, ports, query strings and fragments. On top of it, the contract's rule (README "Links"): a URL
ends before trailing `.,;:!?` and before a closing `)`/`]`/quote it did not open — that punctuation
stays in the body after the short URL. Only http(s) links are returned.
"""
from __future__ import annotations

from dataclasses import dataclass

from linkify_it import LinkifyIt

_linkify = LinkifyIt(options={"fuzzy_link": False, "fuzzy_email": False, "fuzzy_ip": False})
_TRAILING = ".,;:!?"
_CLOSERS = {")": "(", "]": "[", "}": "{"}
_QUOTES = "\"'“”‘’«»"


@dataclass(frozen=True)
class FoundUrl:
    start: int
    end: int  # exclusive
    url: str


def _trim(url: str) -> str:
    """Drop trailing punctuation and unopened closers/quotes (repeatedly: `…x).` → `…x`)."""
    while url:
        last = url[-1]
        if last in _TRAILING:
            url = url[:-1]
        elif last in _CLOSERS and url.count(_CLOSERS[last]) < url.count(last):
            url = url[:-1]
        elif last in _QUOTES and url.count(last) % 2 == 1:
            url = url[:-1]
        else:
            return url
    return url


def find_urls(body: str) -> list[FoundUrl]:
    """The http(s) URLs of `body`, in order of appearance, with their spans."""
    if "://" not in body:  # the common case (an OTP, a reminder): no parser at all
        return []
    found = []
    for match in _linkify.match(body) or []:
        if match.schema.lower() not in ("http:", "https:"):
            continue
        url = _trim(match.raw)
        host_start = url.find("//") + 2
        if len(url) <= host_start:
            continue  # "https://" alone
        found.append(FoundUrl(start=match.index, end=match.index + len(url), url=url))
    return found
