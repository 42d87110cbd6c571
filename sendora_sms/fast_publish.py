"""A Celery task base whose plain `.delay(args…)` is ONE Redis LPUSH (issue #14).

Celery's publish path (amqp.as_task_v2, kombu's Producer and virtual channel) cost ~0.6 ms of CPU per
send — a fifth of the request once the rest was trimmed. For the one shape the hot paths publish (a
task with positional arguments, no options: the dispatcher's batches, the sweeper) this writes the very
message Celery would (protocol 2, the same headers, properties and body; see
tests/unit/test_fast_publish.py, which compares the two) straight onto the queue's Redis list, the
way kombu's Redis transport does for the default exchange (LPUSH to the list named after the queue).
Everything else — options, countdown/eta, retries, eager mode, a non-Redis broker — goes through
Celery's own apply_async unchanged.

Failure semantics are Celery's as configured in settings: one connection attempt (connect timeout
and socket timeout from CELERY_BROKER_TRANSPORT_OPTIONS), no retry; the error propagates to the caller
(the dispatcher keeps its rows and retries; the sweeper re-enqueues).
"""
from __future__ import annotations

import base64
import json
import os
import socket
import threading
import uuid

from celery import Task

from sendora_sms.cache import pooled_command

_clients: dict[str, object] = {}
_lock = threading.Lock()
_ORIGIN = f"gen{os.getpid()}@{socket.gethostname()}"


def _broker_client(app):
    url = app.conf.broker_url
    client = _clients.get(url)
    if client is None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        options = app.conf.broker_transport_options or {}
        with _lock:
            client = _clients.get(url)
            if client is None:
                client = _clients[url] = redis.Redis.from_url(
                    url, socket_connect_timeout=options.get("socket_connect_timeout", 2),
                    socket_timeout=options.get("socket_timeout", 5), retry=Retry(NoBackoff(), 0))
    return client


def _redis_broker(app) -> bool:
    """Whether tasks go to a Redis broker (not in-process, not another transport): the fast path's condition."""
    conf = app.conf
    return not conf.task_always_eager and str(conf.broker_url or "").startswith(("redis://", "rediss://"))


def broker_connect(app) -> None:
    """Open the broker client's connection now (a web worker's boot: sendora_sms/wsgi.py); no-op without a Redis
    broker."""
    if _redis_broker(app):
        _broker_client(app).ping()


class FastPublishTask(Task):
    abstract = True

    def _fast_queue(self) -> str | None:
        conf = self.app.conf
        if not _redis_broker(self.app):
            return None
        route = (conf.task_routes or {}).get(self.name) if isinstance(conf.task_routes, dict) else None
        return (route or {}).get("queue") or None

    def delay(self, *args, **kwargs):
        queue = self._fast_queue() if not kwargs else None
        if queue is None:
            return super().delay(*args, **kwargs)
        return self.AsyncResult(publish(self, queue, args))


def message_for(task: Task, queue: str, args: tuple, task_id: str) -> dict:
    """The protocol-2 message Celery's apply_async would put on the Redis list (as kombu stores it)."""
    conf = task.app.conf
    body = json.dumps([list(args), {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])
    soft = task.soft_time_limit if task.soft_time_limit is not None else conf.task_soft_time_limit
    hard = task.time_limit if task.time_limit is not None else conf.task_time_limit
    return {
        "body": base64.b64encode(body.encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py", "task": task.name, "id": task_id, "shadow": None, "eta": None, "expires": None,
            "group": None, "group_index": None, "retries": 0, "timelimit": [hard, soft], "root_id": task_id,
            "parent_id": None, "argsrepr": repr(tuple(args)), "kwargsrepr": "{}", "origin": _ORIGIN,
            "ignore_result": bool(task.ignore_result if task.ignore_result is not None else conf.task_ignore_result),
            "replaced_task_nesting": 0, "stamped_headers": None, "stamps": {},
        },
        "properties": {
            "correlation_id": task_id, "reply_to": task.app.thread_oid, "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue}, "priority": 0, "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }


# The encoded message is the JSON of message_for(), whose only per-message values are the body, the task id
# (three times), argsrepr and the delivery tag. Per (task, queue, time limits, ignore_result, reply_to) — the
# values read from the configuration, read on every publish as before — its JSON is built once with
# placeholders and split around them; a publish joins the pieces with each value's own JSON (issue #14:
# building and encoding the nested dict was ~25 µs of every send). Same bytes as json.dumps(message_for(…)):
# tests/unit/test_fast_publish.py.
_SLOTS = ("body", "id", "argsrepr", "delivery_tag")
_PLACEHOLDER = "\x00sendora-slot-{}\x00"
_templates: dict[tuple, tuple[list[str], list[str]]] = {}


def _template(task: Task, queue: str) -> tuple[list[str], list[str]]:
    conf = task.app.conf
    soft = task.soft_time_limit if task.soft_time_limit is not None else conf.task_soft_time_limit
    hard = task.time_limit if task.time_limit is not None else conf.task_time_limit
    ignore = task.ignore_result if task.ignore_result is not None else conf.task_ignore_result
    key = (task.name, queue, hard, soft, bool(ignore), task.app.thread_oid)
    found = _templates.get(key)
    if found is None:
        message = message_for(task, queue, (), _PLACEHOLDER.format("id"))
        message["body"] = _PLACEHOLDER.format("body")
        message["headers"]["argsrepr"] = _PLACEHOLDER.format("argsrepr")
        message["properties"]["delivery_tag"] = _PLACEHOLDER.format("delivery_tag")
        text = json.dumps(message)
        pieces, order = [], []
        markers = {json.dumps(_PLACEHOLDER.format(slot)): slot for slot in _SLOTS}
        rest = text
        while True:
            hits = [(rest.find(marker), marker) for marker in markers if marker in rest]
            if not hits:
                break
            at, marker = min(hits)
            pieces.append(rest[:at])
            order.append(markers[marker])
            rest = rest[at + len(marker):]
        pieces.append(rest)
        found = _templates[key] = (pieces, order)
    return found


def encoded_message(task: Task, queue: str, args: tuple, task_id: str) -> str:
    """json.dumps(message_for(task, queue, args, task_id)), from the cached template."""
    pieces, order = _template(task, queue)
    body = json.dumps([list(args), {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])
    values = {"body": json.dumps(base64.b64encode(body.encode()).decode()), "id": json.dumps(task_id),
              "argsrepr": json.dumps(repr(tuple(args))), "delivery_tag": json.dumps(str(uuid.uuid4()))}
    out = [pieces[0]]
    for slot, piece in zip(order, pieces[1:]):
        out.append(values[slot])
        out.append(piece)
    return "".join(out)


def publish(task: Task, queue: str, args: tuple) -> str:
    task_id = str(uuid.uuid4())
    # One LPUSH on a pooled connection; the broker client never retries (_broker_client), so an error
    # propagates, as its lpush() would.
    pooled_command(_broker_client(task.app), b"LPUSH", queue, encoded_message(task, queue, args, task_id))
    return task_id


def publish_many(task: Task, args_list: list[tuple]) -> int:
    """One message per entry of `args_list`, in order, as `task.delay(*args)` would publish each: with a Redis broker
    all of them in ONE LPUSH (the worker takes them oldest first: kombu pops the list's other end); otherwise one
    `delay` each. Raises as `publish` does; with a Redis broker, then, none was published."""
    if not args_list:
        return 0
    queue = task._fast_queue() if isinstance(task, FastPublishTask) else None
    if queue is None:
        for args in args_list:
            task.delay(*args)
        return len(args_list)
    messages = [encoded_message(task, queue, tuple(args), str(uuid.uuid4())) for args in args_list]
    pooled_command(_broker_client(task.app), b"LPUSH", queue, *messages)
    return len(messages)
