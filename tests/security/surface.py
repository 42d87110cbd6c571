"""The attack surface, enumerated from the live URL resolver (not a hand-kept list), so that the
security tests cover every endpoint that exists — including ones added after these tests were written.

- `api_routes()`: every /api/v1 route served by a DRF view, with its methods and path parameters.
- `webhook_routes()`: the subset under /api/v1/sms/webhooks/ (signed by Twilio, not API keys).
- `served_admin_site()`: the AdminSite instance actually served at /admin/ (its registry is the dashboard).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.urls import URLPattern, URLResolver, get_resolver, resolve

_CONVERTER = re.compile(r"<(?:(?P<conv>[^>:]+):)?(?P<name>\w+)>")
_HTTP_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Route:
    template: str  # "/api/v1/orgs/<str:org_id>/sms/sends/<str:send_id>"
    name: str | None
    view_class: type | None
    methods: tuple[str, ...]
    params: tuple[str, ...] = field(default=())

    def path(self, **values: str) -> str:
        """The concrete path with every parameter filled (missing ones raise KeyError)."""
        return _CONVERTER.sub(lambda m: str(values[m.group("name")]), self.template)

    @property
    def is_webhook(self) -> bool:
        return "/sms/webhooks/" in self.template  # provider webhooks (tenant webhooks are /orgs/{org}/webhooks)

    def __str__(self) -> str:  # readable pytest ids
        return f"{'|'.join(m.upper() for m in self.methods)} {self.template}"


def _walk(patterns, prefix: str = ""):
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield route, entry


def _methods(callback) -> tuple[str, ...]:
    actions = getattr(callback, "actions", None)  # a viewset route: {"get": "list", "post": "create"}
    if actions:
        return tuple(m for m in _HTTP_METHODS if m in actions)
    cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if cls is None:
        return ()
    return tuple(m for m in _HTTP_METHODS if hasattr(cls, m))


def all_routes() -> list[Route]:
    routes = []
    for template, entry in _walk(get_resolver().url_patterns):
        if not template.startswith("api/v1/"):
            continue
        callback = entry.callback
        routes.append(Route(
            template="/" + template.lstrip("^").rstrip("$"),
            name=entry.name,
            view_class=getattr(callback, "cls", None) or getattr(callback, "view_class", None),
            methods=_methods(callback),
            params=tuple(m.group("name") for m in _CONVERTER.finditer(template)),
        ))
    return routes


def api_routes() -> list[Route]:
    """Every API-key route under /api/v1 (webhooks excluded)."""
    return [r for r in all_routes() if not r.is_webhook and r.methods]


def org_routes() -> list[Route]:
    return [r for r in api_routes() if "org_id" in r.params]


def webhook_routes() -> list[Route]:
    return [r for r in all_routes() if r.is_webhook and r.methods]


def served_admin_site():
    """The AdminSite whose index answers /admin/ (AdminSite.get_urls tags each view with its site)."""
    match = resolve("/admin/")
    site = getattr(match.func, "admin_site", None)
    if site is None:
        from django.contrib import admin

        site = admin.site
    return site
