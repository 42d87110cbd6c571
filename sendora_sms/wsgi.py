import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sendora_sms.settings")
application = get_wsgi_application()


def _warm() -> None:
    """Import every view before the first request (issue #14). Django imports the URLconf, and with it each
    view module, on a worker's first request: about 0.15 s of CPU per gunicorn worker, paid by whichever
    provider callback or send arrives first after a (re)start — on a busy machine, callbacks that waited
    over a second. Populating the resolver here moves that to the worker's boot, before it accepts."""
    from django.urls import get_resolver

    get_resolver().reverse_dict  # noqa: B018 — populating it imports the URLconf and every included module
    _connect()
    _freeze_boot_objects()


def _connect() -> None:
    """Open the Redis connections a request may use — the rate-limit cache, the broker (the tasks a request still
    publishes: an operator's resend, a keyword reply; a send's dispatch and a callback's events are handed off as rows,
    sms/services/handoff.py) and the events bus — before the first request, for the same reason.
    A Redis that does not answer at boot is not fatal: requests report it as they always have (GET /health)."""
    import logging

    from django.core.cache import cache

    from sendora_sms.celery import app
    from sendora_sms.fast_publish import broker_connect
    from sms.services.events import bus_connect

    for connect in (lambda: cache.get("sendora:boot"), lambda: broker_connect(app), bus_connect):
        try:
            connect()
        except Exception as exc:  # noqa: BLE001 — boot goes on; the request path handles an outage
            logging.getLogger(__name__).warning("Redis not reachable at boot (%s); connecting on first use", exc)


def _freeze_boot_objects() -> None:
    """Move what the boot made — modules, classes, settings, the URL resolver: ~130,000 objects — out of the cyclic
    garbage collector's reach (issue #14, tenth pass). They live as long as the process, yet every full (oldest
    generation) collection walked them all: a pause of ~55 ms in the middle of a request, every few thousand
    requests, with the requests queued behind it on that process — the p99 of the send at 16 clients. Collected
    first, so the boot's own garbage is freed, not frozen; objects made later are collected as before. Python's
    documented use of gc.freeze() (a prefork server's workers); gunicorn imports this module in each worker."""
    import gc

    gc.collect()
    gc.freeze()


_warm()
