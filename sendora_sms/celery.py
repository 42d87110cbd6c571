"""Celery application. Settings come from Django settings under the CELERY_ namespace."""
import os
import threading

from celery import Celery, bootsteps
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


class DispatchHandoffStep(bootsteps.StartStopStep):
    """The dispatcher of a worker that consumes `sms-send` or `sms-events`: a thread of the worker's main process
    running sms/services/handoff.py `handoff_run` — accepted sends' hand-off rows → dispatch tasks (sms-send),
    unpublished events → a drain task (sms-events) — started once the pool is up and stopped with the worker.
    Every such worker runs one; they split the rows (SKIP LOCKED) and share one drain flag."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self._stop = threading.Event()
        self._thread = None

    @staticmethod
    def _consumes(worker) -> tuple[bool, bool]:
        queues = worker.app.amqp.queues
        consumed = queues.consume_from if queues.consume_from is not None else queues
        return QueueNames.SEND in consumed, QueueNames.EVENTS in consumed

    def include_if(self, worker) -> bool:
        return any(self._consumes(worker)) and not worker.app.conf.task_always_eager

    def start(self, worker) -> None:
        from sms.services.handoff import handoff_run

        dispatch, events = self._consumes(worker)
        self._thread = threading.Thread(target=handoff_run, args=(self._stop,), name="dispatch-handoff", daemon=True,
                                        kwargs={"dispatch": dispatch, "events": events})
        self._thread.start()

    def stop(self, worker) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


app.steps["worker"].add(DispatchHandoffStep)


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
