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


_warm()
