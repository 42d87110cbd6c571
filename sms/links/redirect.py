"""The public redirect: `GET {short base}/{code}` (README "Links").

Served by a middleware near the top of the stack, so a short link costs no URL resolution, session,
CSRF or auth work: outside /api/v1, no auth. It answers when the path is the link base's path + `/{code}`
(`/l/{code}` by default), or `/{code}` on a host that is only a link domain (the link base's host when the
base has no path, e.g. https://sndr.link, and every org's branded domain). On a branded domain only that
org's codes resolve; on the platform's base only codes minted there — anything else is the same 404.

A cache hit (services.link_entry) makes no database query: the response is built from the entry and the
click is queued with one RPUSH (services.clicks_queue) once the response has been sent (_ClickResponse.close). Previews (preview/scanner user agents, HEAD) are
queued as previews and never counted. Nothing from the request is ever written into a page; the target
and app URLs are HTML-escaped and JSON-encoded where they appear in the deep-link page.
"""
from __future__ import annotations

import json
import re
import secrets
import time

from django.http import HttpResponse
from django.utils.html import escape

from sms.links import services
from sms.links.agents import is_preview_agent, platform_family
from sms.links.models import ClickKind

CODE_RE = re.compile(r"[A-Za-z0-9]{7,22}")
_COUNTRY_RE = re.compile(r"[A-Z]{2}")
_COMMON_HEADERS = {"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
                   "Cache-Control": "private, no-store"}
_NOT_FOUND_HTML = (b"<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Link not found</title>"
                   b"<h1>Link not found</h1><p>This link does not exist or has expired.</p></html>")


class LinkRedirectMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        base = services.link_base()  # memoised; read per request so settings changes (tests) apply
        prefix = base.prefix
        if prefix is not None and path.startswith(prefix):
            code = path[len(prefix):]
            if not CODE_RE.fullmatch(code):
                return self.get_response(request)
            host = _host(request)
            domain = host if host in _branded() else ""
        elif 8 <= len(path) <= 23 and CODE_RE.fullmatch(path, 1):
            host = _host(request)
            if host == base.link_host:
                domain = ""
            elif host in _branded():
                domain = host
            else:
                return self.get_response(request)
            code = path[1:]
        else:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = HttpResponse(status=405, headers={"Allow": "GET, HEAD", **_COMMON_HEADERS})
            return response
        return follow(request, code, domain, base.country_header)


def _branded():
    return services.branded_domains()


def _host(request) -> str:
    host = request.META.get("HTTP_HOST", "")
    if host.startswith("["):
        return host.lower()
    return host.partition(":")[0].lower().rstrip(".")


def not_found(head: bool) -> HttpResponse:
    response = HttpResponse(b"" if head else _NOT_FOUND_HTML, status=404, content_type="text/html; charset=utf-8",
                            headers=_COMMON_HEADERS)
    return response


def follow(request, code: str, domain: str, country_header: str = "HTTP_CF_IPCOUNTRY") -> HttpResponse:
    head = request.method == "HEAD"
    entry = services.link_entry(code)
    if entry is None or entry.domain != domain or entry.expires <= time.time():
        return not_found(head)
    # Bounded before any regex sees it: crawler patterns over a 5 KB agent cost seconds (a cheap DoS).
    user_agent = request.META.get("HTTP_USER_AGENT", "")[:300]
    platform = platform_family(user_agent)
    if head:
        kind, reason = ClickKind.PREVIEW, "head"
    elif is_preview_agent(user_agent):
        kind, reason = ClickKind.PREVIEW, "user_agent"
    else:
        kind, reason = ClickKind.CLICK, ""
    app_url = entry.ios if platform == "ios" else entry.android if platform == "android" else ""
    if app_url and (kind == ClickKind.CLICK or head):
        response = _app_page(app_url, entry.fallback, head)
    else:
        response = _ClickResponse(status=302, headers={"Location": entry.location, **_COMMON_HEADERS})
    country = request.META.get(country_header, "")
    response.click = services.click_record(
        entry=entry, kind=kind, reason=reason, platform=platform,
        country=country if _COUNTRY_RE.fullmatch(country) and country not in ("XX", "T1") else "",
        user_agent=user_agent)
    return response


class _ClickResponse(HttpResponse):
    """Queues its click when the WSGI server closes it — after the response has been written to the client, so
    the visitor never waits for the queue (PEP 3333: the server calls close() once the body is sent; Django's
    test client does the same)."""

    click: dict | None = None

    def close(self):
        try:
            if self.click is not None:
                click, self.click = self.click, None
                services.clicks_queue(click)
        finally:
            super().close()


def _js(value: str) -> str:
    """A JSON string literal safe inside <script> (no `<`, `>`, `&`, line separators)."""
    return (json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _app_page(app_url: str, fallback: str, head: bool) -> HttpResponse:
    """A tiny page that opens the app, and the web URL when the app did not take over (docs/links.md:
    what works on each platform)."""
    nonce = secrets.token_urlsafe(16)
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1"><title>Opening…</title></head>'
        f'<body><p><a id="open-app" href="{escape(app_url)}">Open in the app</a></p>'
        f'<p><a id="open-web" href="{escape(fallback)}">Continue in the browser</a></p>'
        f'<script nonce="{nonce}">(function(){{var app={_js(app_url)},web={_js(fallback)};'
        'window.location.href=app;'
        'setTimeout(function(){if(!document.hidden){window.location.replace(web);}},1500);})();</script>'
        '</body></html>')
    headers = {**_COMMON_HEADERS, "Content-Security-Policy":
               f"default-src 'none'; script-src 'nonce-{nonce}'; base-uri 'none'; form-action 'none'"}
    return _ClickResponse(b"" if head else html.encode(), status=200, content_type="text/html; charset=utf-8",
                          headers=headers)
