"""Issue #11 point 5: a worker that dies (on a Redis connection loss with celery/kombu 5.7, docs/reliability.md §12)
is restarted by the supervisor configuration the project ships — docs/deploy/supervisord.conf, run here by a
real supervisord — and the new worker dispatches sends."""
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from sms.models import Send
from tests.faults.conftest import http
from tests.faults.infra import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "docs" / "deploy" / "supervisord.conf"


def _ctl(env, *args) -> str:
    return subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c", str(CONF), *args], env=env,
                          capture_output=True, text=True, timeout=30).stdout


def _worker_pid(env) -> int | None:
    line = _ctl(env, "status", "sendora-worker")
    if "RUNNING" not in line:
        return None
    return int(line.split("pid", 1)[1].split(",", 1)[0])


def test_the_shipped_supervisor_config_restarts_a_dead_worker(stack, make_tenant):
    run_dir = tempfile.mkdtemp(prefix="sendora-supervisor-")
    env = {**stack.env(), "SENDORA_DIR": str(ROOT), "SENDORA_PYTHON": sys.executable, "SENDORA_RUN_DIR": run_dir}
    proc = subprocess.Popen([sys.executable, "-m", "supervisor.supervisord", "-c", str(CONF)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        first = wait_for(lambda: _worker_pid(env), timeout=60, message="supervisord to start the worker")
        os.kill(first, signal.SIGKILL)  # the worker dies, as it does on a Redis connection loss
        second = wait_for(lambda: (pid := _worker_pid(env)) and pid != first and pid, timeout=60,
                          message="supervisord to start a new worker")
        assert second != first
        tenant = make_tenant()
        response = http().post(stack.app.url + tenant.send_path, json={"to": "+14155550188", "body": "after"},
                               headers={"x-api-key": tenant.key.raw_key}, timeout=10)
        assert response.status_code == 202, response.text
        send_id = response.json()["id"]
        wait_for(lambda: Send.objects.get(pk=send_id).provider_message_id, timeout=60,
                 message="the restarted worker to dispatch the send")
    finally:
        _ctl(env, "shutdown")
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(0.5)
