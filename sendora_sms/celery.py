"""Celery application. Settings come from Django settings under the CELERY_ namespace."""
import os

from celery import Celery
from celery.signals import task_prerun
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


@task_prerun.connect
def _database_connections_per_task(sender=None, **kwargs):
    """Before each task, what the web tier does before each request (django.db.close_old_connections, then
    sendora_sms/db_health.py): close a connection past CONN_MAX_AGE or left unusable by an error, and re-arm its
    health check unless the connection is provably alive. Celery's own fixup
    would close every connection instead (settings.CELERY_DB_REUSE_MAX). Never for a task run in-process
    (eager), which may be inside the caller's transaction."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    from sendora_sms.db_health import skip_checks_if_quiet

    close_old_connections()
    skip_checks_if_quiet()  # a connection provably alive needs no SELECT 1 (sendora_sms/db_health.py), as for requests
