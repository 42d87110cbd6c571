"""Issue #11 point 5: a worker started as most people start one — `celery -A sendora_sms worker`, no -Q —
consumes every queue the service uses (sends, events, periodic sweeps, tenant webhooks)."""
import os
import subprocess
import sys
import time

import pytest

from sendora_sms.celery import QueueNames, app

pytestmark = pytest.mark.integration


def test_declared_queues_are_every_routed_queue():
    routed = {route["queue"] for route in app.conf.task_routes.values()}
    declared = {queue.name for queue in app.conf.task_queues}
    assert routed <= declared and set(QueueNames.all()) == declared


def test_a_worker_without_q_consumes_every_queue(settings):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "sendora_sms", "worker", "-c", "1", "-l", "info",
                             "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"noq-{os.getpid()}@%h"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    try:
        deadline = time.time() + 40
        while time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            if " ready." in line:
                break
        banner = "".join(output)
        assert " ready." in banner, banner[-3000:]
        queues_section = banner[banner.index("[queues]"):]
        for name in QueueNames.all():
            assert f".> {name}" in queues_section, queues_section
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
