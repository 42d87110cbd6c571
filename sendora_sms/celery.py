"""Celery application. Settings come from Django settings under the CELERY_ namespace."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sendora_sms.settings")

app = Celery("sendora_sms")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class QueueNames:
    """Every queue the service uses; the worker must consume all of them."""

    SEND = "sms-send"
    EVENTS = "sms-events"
    PERIODIC = "sms-periodic"
    WEBHOOKS = "sms-webhooks"  # tenant webhook deliveries: a slow endpoint never holds up a send

    @classmethod
    def all(cls) -> list[str]:
        return [cls.SEND, cls.EVENTS, cls.PERIODIC, cls.WEBHOOKS]
