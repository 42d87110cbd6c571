"""`make run`: migrate → seed_demo → runserver. seed_demo creates the demo set-up once and is safe to re-run;
the last test drives the whole embedded mode (SQLite, in-process tasks, no env) in real processes."""
import io
import json
import os
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from orgs.models import ApiKey, Membership, Org
from orgs.services import api_key_revoke
from sendora_sms.celery import app as celery_app
from sms.models import InboundMessage, ProviderAccount, Send, Suppression

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo_env(settings, tmp_path, monkeypatch):
    """As under `make run`: ./var is a fresh directory and tasks run in-process."""
    settings.VAR_DIR = tmp_path
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    return tmp_path


def seed(*args) -> dict:
    out = io.StringIO()
    call_command("seed_demo", "--json", "--force", *args, stdout=out, stderr=io.StringIO())
    return json.loads(out.getvalue())


@pytest.mark.django_db(transaction=True)
def test_seed_demo_twice_gives_one_org_one_superuser_and_the_same_credentials(demo_env):
    first = seed()
    second = seed()
    assert first["created"] is True and second["created"] is False
    assert {k: v for k, v in first.items() if k != "created"} == {k: v for k, v in second.items() if k != "created"}
    assert Org.objects.count() == 1 and ApiKey.objects.count() == 1
    users = get_user_model().objects.all()
    assert [u.username for u in users] == ["demo"] and users[0].is_superuser and users[0].is_staff
    assert users[0].check_password(first["password"])
    org = Org.objects.get()
    assert (str(org.pk), org.plan) == (first["org_id"], "starter")
    assert Membership.objects.get(org=org, user=users[0]).role == "owner"
    account = ProviderAccount.objects.get(org=org)
    assert account.from_number == "+15005550006" and account.account_sid.startswith("AC") and account.auth_token()


@pytest.mark.django_db(transaction=True)
def test_demo_key_is_an_admin_sandbox_secret_key_that_works(demo_env):
    data = seed()
    assert data["api_key"].startswith("sk_test_")
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=data["api_key"])
    assert client.get(f"/api/v1/orgs/{data['org_id']}/audit-log").status_code == 200  # admin endpoint
    response = client.post(f"/api/v1/orgs/{data['org_id']}/sms/send",
                           data='{"to": "+15551112222", "body": "Hello from Sendora"}',
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 202 and response.json()["mode"] == "test"


@pytest.mark.django_db(transaction=True)
def test_demo_activity_fills_every_dashboard_page_once(demo_env):
    seed()
    org = Org.objects.get()
    statuses = set(Send.objects.filter(org=org).values_list("status", flat=True))
    assert {"delivered", "failed", "suppressed"} <= statuses
    assert Send.objects.filter(org=org, metadata__suppressed=True).exists()
    assert Suppression.objects.filter(org=org).count() >= 2
    assert InboundMessage.objects.filter(org=org).exists()
    assert org.events.exists()
    counts = (Send.objects.count(), Suppression.objects.count(), InboundMessage.objects.count())
    seed()
    assert (Send.objects.count(), Suppression.objects.count(), InboundMessage.objects.count()) == counts


@pytest.mark.django_db(transaction=True)
def test_credentials_file_is_private_and_holds_what_was_printed(demo_env):
    data = seed()
    path = demo_env / "demo-credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {k: v for k, v in data.items() if k != "created"}


@pytest.mark.django_db(transaction=True)
def test_lost_credentials_file_finds_the_same_org_and_mints_a_fresh_key(demo_env):
    first = seed()
    (demo_env / "demo-credentials.json").unlink()
    again = seed()
    assert again["org_id"] == first["org_id"] and Org.objects.count() == 1
    assert again["api_key"] != first["api_key"]
    assert get_user_model().objects.get(username="demo").check_password(again["password"])
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=again["api_key"])
    assert client.get(f"/api/v1/orgs/{again['org_id']}/audit-log").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_revoked_demo_key_is_replaced(demo_env):
    first = seed()
    api_key_revoke(api_key=ApiKey.objects.get(pk=first["api_key_id"]))
    again = seed()
    assert again["api_key"] != first["api_key"] and again["org_id"] == first["org_id"]


@pytest.mark.django_db
def test_seed_demo_refuses_to_run_with_debug_off_unless_forced(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("seed_demo", stdout=io.StringIO())
    assert not Org.objects.exists() and not (tmp_path / "demo-credentials.json").exists()


def test_make_run_migrates_seeds_then_serves_on_127_0_0_1_8000():
    result = subprocess.run(["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    commands = result.stdout
    order = [commands.find("manage.py migrate"), commands.find("manage.py seed_demo"),
             commands.find("manage.py runserver 127.0.0.1:8000")]
    assert -1 not in order and order == sorted(order), commands
    # Settings default to production (DEBUG off); the embedded mode turns DEBUG on explicitly, for each step.
    manage_lines = [line for line in commands.splitlines() if "manage.py" in line]
    assert len(manage_lines) == 3 and all(line.startswith("DEBUG=true ") for line in manage_lines), commands


# --- the embedded mode end to end, in real processes ----------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_embedded_mode_end_to_end_without_any_environment(tmp_path):
    # Only what `make run` itself sets (DEBUG=true): no other environment at all.
    env = {"PATH": os.environ.get("PATH", ""), "SENDORA_VAR_DIR": str(tmp_path / "var"), "NO_PROXY": "127.0.0.1",
           "DEBUG": "true"}

    def manage(*args):
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=120)

    assert manage("migrate", "--noinput").returncode == 0
    first, second = manage("seed_demo"), manage("seed_demo")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "(created)" in first.stdout and "already set up" in second.stdout
    data = json.loads((tmp_path / "var" / "demo-credentials.json").read_text())
    assert data["org_id"] in second.stdout and data["api_key"] in second.stdout
    assert (tmp_path / "var" / "db.sqlite3").exists()

    port = _free_port()
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                health = urllib.request.urlopen(f"{base}/health", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        else:
            pytest.fail("runserver did not answer")
        assert json.loads(health.read()) == {"status": "ok", "checks": {"database": "ok", "broker": "in-process"},
                                             "details": {"providers": {"twilio": {  # the demo org's account
                                                 "accounts": 1, "demoted": 0, "success_rate": None}}}}
        # Exactly what the README's curl -d example sends: JSON, form-encoded.
        request = urllib.request.Request(
            f"{base}/api/v1/orgs/{data['org_id']}/sms/send", method="POST",
            data=b'{"to": "+15551234567", "body": "Hello from Sendora"}',
            headers={"x-api-key": data["api_key"], "Content-Type": "application/x-www-form-urlencoded"})
        response = urllib.request.urlopen(request, timeout=10)
        assert response.status == 202
        send_id = json.loads(response.read())["id"]
        detail = urllib.request.Request(f"{base}/api/v1/orgs/{data['org_id']}/sms/sends/{send_id}",
                                        headers={"Authorization": f"Bearer {data['api_key']}"})
        assert json.loads(urllib.request.urlopen(detail, timeout=10).read())["status"] == "delivered"  # in-process
        assert urllib.request.urlopen(f"{base}/api/docs", timeout=10).status == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
