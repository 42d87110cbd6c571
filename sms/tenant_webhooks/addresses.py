"""Which URLs a tenant webhook may call (SSRF protection), checked at creation and again before every delivery.

- `https` only; plain `http` when WEBHOOKS_ALLOW_HTTP (development, tests).
- The host must resolve, and to public addresses only: loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7),
  link-local (169.254/16 — cloud metadata lives there —, fe80::/10), CGNAT, multicast, reserved, unspecified and
  IPv4-mapped forms of those are refused, unless WEBHOOKS_ALLOW_PRIVATE_ADDRESSES. Every address a name resolves
  to must pass (a name with one public and one private address is refused).
- Redirects are never followed (the delivery passes allow_redirects=False).
"""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


class UrlNotAllowed(ValueError):
    """str(exc) says why; the API answers 400 invalid_url."""


def _blocked(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlNotAllowed(f"The host {host!r} does not resolve.") from exc
    return sorted({info[4][0] for info in infos})


def url_check(url: str) -> None:
    """Raise UrlNotAllowed unless `url` may be delivered to now."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UrlNotAllowed("The URL is not valid.") from exc
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UrlNotAllowed("The URL must be an absolute https:// URL.")
    if parts.scheme == "http" and not settings.WEBHOOKS_ALLOW_HTTP:
        raise UrlNotAllowed("The URL must use https.")
    if parts.username or parts.password:
        raise UrlNotAllowed("The URL may not carry credentials.")
    if settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES:
        return
    for address in resolve(parts.hostname, port):
        if _blocked(ipaddress.ip_address(address.split("%", 1)[0])):
            raise UrlNotAllowed(f"The URL resolves to a non-public address ({address}).")
