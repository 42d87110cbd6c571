"""The client's address, for the bad-key limiter and the audit log.

Behind N trusted reverse proxies (TRUSTED_PROXY_COUNT, default 0), the client is the N-th address
from the right of X-Forwarded-For: each trusted proxy appends the address it saw, and anything to
the left of that was written by the client and cannot be trusted. With 0, X-Forwarded-For is ignored
(a client could otherwise reset its own bad-key count by sending a fresh header each time).
"""
import ipaddress

from django.conf import settings


def client_ip(request) -> str | None:
    remote = request.META.get("REMOTE_ADDR") or None
    hops = settings.TRUSTED_PROXY_COUNT
    if hops <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < hops:
        return remote
    candidate = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
