"""Every queue the service routes to is declared in QueueNames, and the real worker consumes all of them."""
import uuid

import pytest
from django.conf import settings

from sendora_sms.celery import QueueNames, app
from sms.tasks import events_publish_task
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


def test_every_task_route_and_the_default_queue_are_in_queue_names():
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert routed | {settings.CELERY_TASK_DEFAULT_QUEUE} <= set(QueueNames.all())


def test_every_queue_name_is_used_by_some_route():
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert set(QueueNames.all()) <= routed | {settings.CELERY_TASK_DEFAULT_QUEUE}


def test_the_worker_subscribes_to_every_queue(celery_worker):
    replies = app.control.inspect(timeout=3).active_queues() or {}
    consumed = {q["name"] for queues in replies.values() for q in queues}
    assert set(QueueNames.all()) <= consumed


@pytest.mark.parametrize("queue", QueueNames.all())
def test_a_task_sent_to_each_queue_is_executed_by_the_worker(celery_worker, queue):
    task_id = events_publish_task.apply_async(args=[str(uuid.uuid4())], queue=queue).id
    wait_for(lambda: any(task_id in line and "succeeded" in line for line in celery_worker.output().splitlines()),
             message=f"a task on {queue}")
