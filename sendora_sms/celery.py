"""Celery application. Settings come from Django settings under the CELERY_ namespace."""
import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sendora_sms.settings")

class QueueNames:
    """Every queue the service uses; the worker must consume all of them."""

    SEND = "sms-send"
    EVENTS = "sms-events"
    PERIODIC = "sms-periodic"
    WEBHOOKS = "sms-webhooks"  # tenant webhook deliveries: a slow endpoint never holds up a send

    @classmethod
    def all(cls) -> list[str]:
        return [cls.SEND, cls.EVENTS, cls.PERIODIC, cls.WEBHOOKS]



app = Celery("sendora_sms")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Declared here, so a worker started the way most people start one (`celery -A sendora_sms worker`, no -Q)
# consumes every queue the service uses; -Q still narrows a specialised worker.
app.conf.task_queues = [Queue(name, routing_key=name) for name in QueueNames.all()]
app.autodiscover_tasks()
