"""Issue #14: the dispatch hand-off through the transactional outbox (sms/services/handoff.py).

The send writes its hand-off row with itself; a worker's dispatcher publishes one dispatch task per row, oldest
first, in one LPUSH on the real Redis broker, and deletes the rows in the same PostgreSQL transaction. These tests
drive the service and the loop directly; tests/integration/test_dispatch_handoff.py runs them in a real worker."""
import base64
import json
import threading
import time
import uuid

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from sendora_sms import fast_publish
from sms.models import DispatchHandoff, Send
from sms.services import handoff
from sms.services.sends import send_create
from sms.tasks import send_dispatch_task
from tests.factories import ProviderAccountFactory

QUEUE = "sms-send-handoff-test"  # not a served queue: a running test worker must not take these


@pytest.fixture
def broker(monkeypatch):
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(QUEUE)
    monkeypatch.setattr(send_dispatch_task._get_current_object(), "_fast_queue", lambda: QUEUE)
    yield client
    client.delete(QUEUE)


def _published(client) -> list[str]:
    """The send ids on the test queue, in the order a worker takes them (kombu pops the list's right end)."""
    messages = [json.loads(raw) for raw in reversed(client.lrange(QUEUE, 0, -1))]
    assert all(m["headers"]["task"] == "sms.tasks.send_dispatch_task" for m in messages)
    return [json.loads(base64.b64decode(m["body"]))[0][0] for m in messages]


def _rows(n: int) -> list[str]:
    ids = [uuid.uuid4() for _ in range(n)]
    DispatchHandoff.objects.bulk_create([DispatchHandoff(send_id=i, created_at=timezone.now()) for i in ids])
    return [str(i) for i in ids]


@pytest.mark.django_db
def test_an_accepted_send_writes_its_hand_off_in_its_own_transaction_and_publishes_nothing(
        org, member_key, broker, django_capture_on_commit_callbacks):
    ProviderAccountFactory(org=org)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        send = send_create(org=org, api_key=member_key, to="+15551234567", body="hello").send
    assert list(DispatchHandoff.objects.values_list("send_id", "created_at")) == [(send.id, send.created_at)]
    assert broker.llen(QUEUE) == 0  # the request published nothing
    assert all("dispatch" not in repr(c) for c in callbacks)


@pytest.mark.django_db
def test_embedded_mode_writes_no_hand_off_and_dispatches_after_commit(org, member_key, monkeypatch,
                                                                     django_capture_on_commit_callbacks):
    from sms.services import enqueue

    ProviderAccountFactory(org=org)
    from sendora_sms.celery import app as celery_app

    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)  # `make run`: no broker, no dispatcher
    ran = []
    monkeypatch.setattr(enqueue, "dispatch_publish", lambda **kw: ran.append(str(kw["send_id"])))
    with django_capture_on_commit_callbacks(execute=True):
        send = send_create(org=org, api_key=member_key, to="+15551234567", body="hello").send
    assert DispatchHandoff.objects.count() == 0 and ran == [str(send.id)]


@pytest.mark.django_db
def test_a_drain_publishes_each_hand_off_once_oldest_first_in_one_command_and_deletes_it(broker, monkeypatch):
    ids = _rows(7)
    commands = []
    real = fast_publish.pooled_command
    monkeypatch.setattr(fast_publish, "pooled_command", lambda *a: commands.append(a[1:3]) or real(*a))
    assert handoff.handoff_drain(limit=5) == 5
    assert handoff.handoff_drain(limit=5) == 2
    assert handoff.handoff_drain(limit=5) == 0
    assert _published(broker) == ids
    assert commands == [(b"LPUSH", QUEUE), (b"LPUSH", QUEUE)]  # one command per batch
    assert DispatchHandoff.objects.count() == 0


@pytest.mark.django_db
def test_a_broker_refusal_leaves_every_row_for_the_next_drain(broker, monkeypatch):
    ids = _rows(3)

    def refuse(*args):
        raise redis.ConnectionError("broker away")

    monkeypatch.setattr(fast_publish, "pooled_command", refuse)
    with pytest.raises(redis.ConnectionError):
        handoff.handoff_drain()
    assert sorted(str(i) for i in DispatchHandoff.objects.values_list("send_id", flat=True)) == sorted(ids)
    monkeypatch.undo()
    monkeypatch.setattr(send_dispatch_task._get_current_object(), "_fast_queue", lambda: QUEUE)
    assert handoff.handoff_drain() == 3
    assert _published(broker) == ids


@pytest.mark.django_db(transaction=True)
def test_concurrent_dispatchers_never_publish_a_row_twice(broker):
    """Four dispatchers (threads, each its own PostgreSQL connection) drain 2,000 rows in batches of 25 at once."""
    ids = _rows(2000)
    barrier = threading.Barrier(4)
    errors = []

    def dispatcher():
        try:
            barrier.wait()
            while handoff.handoff_drain(limit=25):
                pass
        except Exception as exc:  # noqa: BLE001 — reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatcher) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    published = _published(broker)
    assert len(published) == 2000 and set(published) == set(ids)  # each exactly once
    assert DispatchHandoff.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_the_loop_publishes_what_arrives_keeps_going_after_an_error_and_stops_when_told(broker, monkeypatch, caplog):
    stop = threading.Event()
    failures = {"left": 1}
    real = handoff.handoff_drain

    def flaky(**kw):
        if failures["left"]:
            failures["left"] -= 1
            raise redis.ConnectionError("broker away")
        return real(**kw)

    monkeypatch.setattr(handoff, "handoff_drain", flaky)
    thread = threading.Thread(target=handoff.handoff_run, args=(stop,), kwargs={"poll": 0.01})
    thread.start()
    try:
        ids = _rows(3)
        deadline = time.monotonic() + 10
        while broker.llen(QUEUE) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _published(broker) == ids
        later = _rows(1)
        while broker.llen(QUEUE) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _published(broker) == ids + later
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert "drain failed" in caplog.text


def test_only_a_worker_that_consumes_sms_send_or_sms_events_runs_a_dispatcher():
    from types import SimpleNamespace

    from sendora_sms.celery import DispatchHandoffStep, app

    def worker(queues, eager=False):
        conf = SimpleNamespace(task_always_eager=eager)
        return SimpleNamespace(app=SimpleNamespace(amqp=SimpleNamespace(queues=SimpleNamespace(
            consume_from={q: None for q in queues})), conf=conf))

    step = DispatchHandoffStep.__new__(DispatchHandoffStep)
    assert step.include_if(worker(["sms-send", "sms-events"]))
    assert step._consumes(worker(["sms-send", "sms-events"])) == (True, True)
    assert step._consumes(worker(["sms-events", "sms-webhooks"])) == (False, True)  # kicks the events drain only
    assert not step.include_if(worker(["sms-webhooks", "sms-periodic"]))
    assert not step.include_if(worker(["sms-send"], eager=True))
    assert DispatchHandoffStep in app.steps["worker"]


def test_psycopg_caches_the_conversion_of_the_sends_long_statements():
    """sendora_sms/db.py raises psycopg's limits: the send's combined INSERT (~60 parameters) is converted once."""
    from psycopg import _queries

    assert _queries.MAX_CACHED_STATEMENT_PARAMS >= 100 and _queries.MAX_CACHED_STATEMENT_LENGTH >= 8192
