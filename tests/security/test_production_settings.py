"""Issue #10 points 8 and 11 — production by default.

- `manage.py check --deploy` with exactly the README's production settings reports nothing but the
  warnings the README explains (point 11).
- Every API response carries `Cache-Control: no-store`: bodies hold one-time codes (point 11).
- Failed dashboard logins are throttled per client address and per username; a correct password is
  not even checked while throttled; a successful login does not count (point 8).
- Dashboard passwords go through Django's standard validators (point 8).
(DEBUG off by default, Secure/HttpOnly cookies, SECURE_PROXY_SSL_HEADER and HSTS from the environment:
tests/unit/test_settings_startup.py; `make run` turning DEBUG on: tests/commands/test_make_run.py.)
"""
from __future__ import annotations

import base64
import os
import re
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = base64.b64encode(b"k" * 32).decode()


# --- check --deploy with the README's production settings ------------------------------------------------------

def _readme_production_env() -> dict[str, str]:
    """The `export` lines of the first sh block under README "## Running in production"."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Running in production", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    env: dict[str, str] = {}
    for line in block.splitlines():
        if line.startswith("export "):
            for item in shlex.split(line[len("export "):]):
                name, _, value = item.partition("=")
                env[name] = value
    assert {"DEBUG", "SECRET_KEY", "SMS_ENCRYPTION_KEYS", "ALLOWED_HOSTS"} <= set(env), env
    # Placeholders (…) get real values of the right shape.
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    env["SMS_ENCRYPTION_KEYS"] = GOOD_KEY
    return {name: value.replace("…", "pw") for name, value in env.items()}


def _readme_explained_warnings() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Running in production", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`((?:security|sendora|django_ratelimit)\.[EW]\d+)`", section))


def test_check_deploy_with_the_readme_production_settings_has_only_explained_warnings(tmp_path):
    env = {"PATH": os.environ.get("PATH", ""), "SENDORA_VAR_DIR": str(tmp_path / "var"),
           **_readme_production_env()}
    assert env["DEBUG"] == "false"
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr  # no errors
    reported = set(re.findall(r"\(([a-z_]+\.[EW]\d+)\)", result.stdout + result.stderr))
    explained = _readme_explained_warnings()
    assert reported <= explained, (reported - explained, result.stdout + result.stderr)
    assert reported == explained, f"README explains warnings check --deploy no longer gives: {explained - reported}"


def test_check_deploy_with_the_readme_settings_fails_without_the_security_settings(tmp_path):
    """The test above can fail: drop the HTTPS settings and check --deploy complains."""
    env = {"PATH": os.environ.get("PATH", ""), "SENDORA_VAR_DIR": str(tmp_path / "var"),
           **_readme_production_env()}
    for name in ("SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS"):
        env.pop(name, None)
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    reported = set(re.findall(r"\(([a-z_]+\.[EW]\d+)\)", result.stdout + result.stderr))
    assert {"security.W004", "security.W008"} <= reported


# --- Cache-Control: no-store on every API response ----------------------------------------------------------

def test_every_kind_of_api_response_carries_cache_control_no_store(tenant_a, settings):
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=tenant_a.admin_key.raw_key)
    base = f"/api/v1/orgs/{tenant_a.org_id}"
    sent = client.post(f"{base}/sms/send", {"to": "+15551230001", "body": "Your code is 482910"}, format="json")
    assert sent.status_code == 202
    responses = {
        "202 send": sent,
        "200 detail": client.get(f"{base}/sms/sends/{sent.json()['id']}"),
        "200 list": client.get(f"{base}/sms/sends"),
        "200 audit log": client.get(f"{base}/audit-log"),
        "400": client.post(f"{base}/sms/send", {"to": "nope", "body": "x"}, format="json"),
        "401": APIClient().get(f"{base}/sms/sends", HTTP_X_API_KEY="sk_test_" + "x" * 32),
        "404 unknown path": client.get("/api/v1/nothing-here"),
        "413": client.post(f"{base}/sms/send", data="x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1),
                           content_type="application/json"),
        "health": Client().get("/health"),
    }
    statuses = {name: r.status_code for name, r in responses.items()}
    assert statuses["401"] == 401 and statuses["404 unknown path"] == 404 and statuses["413"] == 413, statuses
    for name, response in responses.items():
        assert response.get("Cache-Control") == "no-store", (name, response.get("Cache-Control"))


# --- dashboard login throttle --------------------------------------------------------------------------------

def _login(client: Client, username: str, password: str, address: str):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password},
                       REMOTE_ADDR=address)


@pytest.mark.django_db
def test_failed_dashboard_logins_are_throttled_per_username(settings):
    settings.DASHBOARD_LOGIN_RATE_PER_USERNAME = "3/10m"
    settings.DASHBOARD_LOGIN_RATE_PER_ADDRESS = "100/10m"
    UserFactory(username="alice", password="correct horse battery staple", is_staff=True)
    for n in range(3):  # from rotating addresses: the username count still adds up
        assert _login(Client(), "alice", f"guess-{n}", f"198.51.100.{n}").status_code == 200  # the form again
    refused = _login(Client(), "alice", "correct horse battery staple", "198.51.100.99")
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert b"Too many failed login attempts" in refused.content
    assert "_auth_user_id" not in refused.wsgi_request.session  # the right password did not log in
    # Another user is unaffected.
    UserFactory(username="bob", password="another long passphrase", is_staff=True)
    assert _login(Client(), "bob", "another long passphrase", "198.51.100.99").status_code == 302


@pytest.mark.django_db
def test_failed_dashboard_logins_are_throttled_per_address_and_successes_do_not_count(settings):
    settings.DASHBOARD_LOGIN_RATE_PER_USERNAME = "100/10m"
    settings.DASHBOARD_LOGIN_RATE_PER_ADDRESS = "4/10m"
    UserFactory(username="carol", password="a fine long passphrase", is_staff=True)
    office = "203.0.113.10"
    for _ in range(6):  # successful logins never count
        assert _login(Client(), "carol", "a fine long passphrase", office).status_code == 302
    for n in range(4):
        assert _login(Client(), f"user{n}", "wrong", office).status_code == 200
    assert _login(Client(), "carol", "a fine long passphrase", office).status_code == 429
    assert _login(Client(), "carol", "a fine long passphrase", "203.0.113.11").status_code == 302
    assert Client().get("/admin/login/", REMOTE_ADDR=office).status_code == 200  # the page itself still shows


# --- password validators -------------------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("password, message", [
    ("short1", "too short"),
    ("password123", "too common"),
    ("8471629350", "entirely numeric"),
    ("dashboard-alice", "too similar"),
])
def test_dashboard_passwords_go_through_the_standard_validators(password, message):
    user = UserFactory.build(username="dashboard-alice", email="alice@example.com")
    with pytest.raises(ValidationError) as raised:
        validate_password(password, user=user)
    assert message in " ".join(raised.value.messages)
    validate_password("correct horse battery staple", user=user)  # a good one passes
